/**
 * What libvirt finds on the host before it starts QEMU and QEMU cannot find itself, found by the
 * QEMU-direct backend (input-video family): free TCP ports for a SPICE `autoport='yes'` (libvirt's
 * qemuProcessGraphicsReservePorts, from `remote_display_port_min` 5900 up) and free vsock CIDs
 * for `<cid auto='yes'/>` (qemuProcessPrepareHostVsock, from 3 up).
 */
import * as net from "node:net";
import { promises as fs } from "node:fs";
import { DomainDef } from "../../xml/domain";
import { childElements, firstChild, getAttr } from "../../xml/tree";
import { DirectError } from "./direct-error";

/** libvirt's display port range (qemu.conf `remote_display_port_min` / `remote_display_port_max`). */
export const DISPLAY_PORT_MIN = 5900;
export const DISPLAY_PORT_MAX = 65535;

/** How many ports the definition's SPICE graphics with `autoport='yes'` (or `port='-1'`) need. */
export function autoGraphicsPortCount(def: DomainDef): number {
  const devices = firstChild(def.root, "devices");
  if (!devices) return 0;
  return childElements(devices, "graphics").filter((g) => {
    if (getAttr(g, "type") !== "spice") return false;
    if (getAttr(g, "autoport") !== "yes" && getAttr(g, "port") !== "-1") return false;
    const listen = firstChild(g, "listen");
    return (getAttr(listen, "type") ?? "address") === "address";
  }).length;
}

/**
 * The TCP ports the definition's graphics name themselves (`port`, `tlsPort`, VNC `websocket`, above
 * 0, of graphics without autoport), which libvirt reserves before it picks the automatic ones
 * (qemuProcessGraphicsReservePorts): an automatic port is never one of them.
 */
export function fixedGraphicsPorts(def: DomainDef): number[] {
  const devices = firstChild(def.root, "devices");
  if (!devices) return [];
  const ports: number[] = [];
  for (const g of childElements(devices, "graphics")) {
    const auto = getAttr(g, "autoport") === "yes";
    for (const a of auto ? ["websocket"] : ["port", "tlsPort", "websocket"]) {
      const n = Number(getAttr(g, a));
      if (Number.isInteger(n) && n > 0) ports.push(n);
    }
  }
  return ports;
}

/** Whether nothing listens on TCP `port` (of any address): a listen there succeeds. Bounded by `timeoutMs`. */
function portIsFree(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    const timer = setTimeout(() => {
      server.close();
      resolve(false);
    }, timeoutMs);
    server.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
    server.listen({ port, exclusive: true }, () => {
      clearTimeout(timer);
      server.close(() => resolve(true));
    });
  });
}

/**
 * `count` free TCP ports from {@link DISPLAY_PORT_MIN} up, skipping `skip`; throws when the range
 * has fewer. Another process may still take one before QEMU binds it: QEMU then fails to start
 * and says which port.
 */
export async function freeDisplayPorts(count: number, skip: readonly number[] = []): Promise<number[]> {
  const out: number[] = [];
  for (let port = DISPLAY_PORT_MIN; out.length < count && port <= DISPLAY_PORT_MAX; port++)
    if (!skip.includes(port) && (await portIsFree(port, 2000))) out.push(port);
  if (out.length < count)
    throw new DirectError(
      `internal error: Unable to find an unused port in range 'display' (${DISPLAY_PORT_MIN}-${DISPLAY_PORT_MAX}) for ${count} SPICE autoport graphics`,
      {
        path: "/domain/devices/graphics/@autoport",
        fix: "free a port from 5900 up, or write a fixed port='N' with autoport='no'",
      },
    );
  return out;
}

/** How many `<vsock>` of the definition ask for a CID found at start (`<cid auto='yes'/>`). */
export function autoVsockCount(def: DomainDef): number {
  const devices = firstChild(def.root, "devices");
  if (!devices) return 0;
  return childElements(devices, "vsock").filter((v) => getAttr(firstChild(v, "cid"), "auto") === "yes").length;
}

/** The vsock CIDs the running QEMUs of this host were given (`"guest-cid":N` / `guest-cid=N` on their command lines). */
async function cidsInUse(): Promise<Set<number>> {
  const used = new Set<number>();
  for (const pid of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^[0-9]+$/.test(pid)) continue;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    for (const m of cmdline.matchAll(/"?guest-cid"?[:=]\s*([0-9]+)/g)) used.add(Number(m[1]));
  }
  return used;
}

/**
 * `count` vsock CIDs from 3 up that no running QEMU of this host was given, for `<cid
 * auto='yes'/>` (libvirt tries each CID on /dev/vhost-vsock, qemuProcessPrepareHostVsock;
 * the QEMU-direct backend reads the command lines of the running QEMUs). A CID some other vsock
 * user holds makes QEMU fail to start, saying so.
 */
export async function freeVsockCids(count: number): Promise<number[]> {
  if (count === 0) return [];
  const used = await cidsInUse();
  const out: number[] = [];
  for (let cid = 3; out.length < count; cid++) if (!used.has(cid)) out.push(cid);
  return out;
}
