/**
 * Free TCP ports for the graphics QEMU cannot place itself (a SPICE `autoport='yes'`): what
 * libvirt's port allocator does before it starts QEMU (qemuProcessGraphicsReservePorts, from
 * `remote_display_port_min` 5900 up), done by the QEMU-direct backend (input-video family).
 */
import * as net from "node:net";
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
