/**
 * The PCI bus tree of the QEMU command line (issue 12, family "controllers"): what libvirt's
 * `qemuDomainAssignPCIAddresses` (src/qemu/qemu_domain_address.c) and its address sets
 * (src/conf/domain_addr.c) decide, and what `qemuBuildControllerPCIDevProps` writes.
 *
 * - `<controller type='pci'>` of every model libvirt builds on x86: pci-bridge,
 *   dmi-to-pci-bridge, pcie-root-port, pcie-switch-upstream-port / downstream-port,
 *   pcie-to-pci-bridge, pci-expander-bus and pcie-expander-bus, with `<model name>`, `<target
 *   chassisNr chassis port busNr hotplug>` and `<target><node>`;
 * - the layout of devices written without an address, as libvirt makes it: every bus accepts
 *   some connection types (PCI or PCIe endpoints, root ports, switch ports, bridges); a device
 *   takes the first free slot of the first bus that accepts it, in libvirt's device order; a
 *   first pass finds the buses missing and adds them (pcie-root-ports on q35, a pcie-root-port
 *   and a pcie-to-pci-bridge for the first conventional PCI device there, pci-bridges on the PC
 *   machine), the second lays everything out; the chipset's fixed places (PIIX3 slot 1 and the
 *   primary video at slot 2 on pc; the ICH9 functions at 1f, video at 1, USB2 at 1d/1a, audio
 *   at 1b and the DMI bridge at 1e on q35) come first;
 * - the rules libvirt checks on written addresses (a bus that does not accept the device, a
 *   slot out of the bus's range, an address used twice, an index not above its bus).
 *
 * Bus names are libvirt's: `pci.0` / `pcie.0` the root, `pci.N` the controller of index N.
 *
 * Pure: no I/O.
 */
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { DomainXmlError } from "../xml/errors";

// What a bus accepts and what a device needs (libvirt's virDomainPCIConnectFlags).
/** The bus takes hot-plugged devices. */
export const HOTPLUGGABLE = 1 << 0;
/** The bus takes devices written without an address. */
export const AUTOASSIGN = 1 << 1;
/** The device must be on the root bus (virtio-iommu, pvpanic). */
export const INTEGRATED = 1 << 2;
/** Several devices of this kind may share a slot, one a function (pcie-root-ports). */
export const AGGREGATE_SLOT = 1 << 3;
/** A conventional PCI endpoint. */
export const PCI_DEVICE = 1 << 4;
/** A PCI Express endpoint. */
export const PCIE_DEVICE = 1 << 5;
const PCIE_ROOT_PORT = 1 << 6;
const PCIE_SWITCH_UPSTREAM_PORT = 1 << 7;
const PCIE_SWITCH_DOWNSTREAM_PORT = 1 << 8;
const DMI_TO_PCI_BRIDGE = 1 << 9;
const PCIE_EXPANDER_BUS = 1 << 10;
const PCI_EXPANDER_BUS = 1 << 11;
const PCI_BRIDGE = 1 << 12;
const PCIE_TO_PCI_BRIDGE = 1 << 13;
const TYPES_MASK =
  PCI_DEVICE |
  PCIE_DEVICE |
  PCIE_ROOT_PORT |
  PCIE_SWITCH_UPSTREAM_PORT |
  PCIE_SWITCH_DOWNSTREAM_PORT |
  DMI_TO_PCI_BRIDGE |
  PCIE_EXPANDER_BUS |
  PCI_EXPANDER_BUS |
  PCI_BRIDGE |
  PCIE_TO_PCI_BRIDGE;
const TYPES_ENDPOINT = PCI_DEVICE | PCIE_DEVICE;

/** The PCI controller models libvirt knows (`<controller type='pci' model=...>`). */
export const PCI_CONTROLLER_MODELS = [
  "pci-root",
  "pcie-root",
  "pci-bridge",
  "dmi-to-pci-bridge",
  "pcie-root-port",
  "pcie-switch-upstream-port",
  "pcie-switch-downstream-port",
  "pci-expander-bus",
  "pcie-expander-bus",
  "pcie-to-pci-bridge",
] as const;

/** The models that plug into PCI Express only: not on the PC machine's pci-root. */
const PCIE_ONLY_MODELS: readonly string[] = [
  "pcie-root-port",
  "pcie-switch-upstream-port",
  "pcie-switch-downstream-port",
  "dmi-to-pci-bridge",
  "pcie-to-pci-bridge",
];

/** The connection a controller of a model makes upstream (virDomainPCIControllerModelToConnectType). */
const MODEL_CONNECT: Readonly<Record<string, number>> = {
  "pci-bridge": PCI_BRIDGE,
  "pci-expander-bus": PCI_EXPANDER_BUS,
  "pcie-expander-bus": PCIE_EXPANDER_BUS,
  "dmi-to-pci-bridge": DMI_TO_PCI_BRIDGE,
  "pcie-to-pci-bridge": PCIE_TO_PCI_BRIDGE,
  "pcie-root-port": PCIE_ROOT_PORT | AGGREGATE_SLOT,
  "pcie-switch-upstream-port": PCIE_SWITCH_UPSTREAM_PORT,
  "pcie-switch-downstream-port": PCIE_SWITCH_DOWNSTREAM_PORT,
};

/** The QEMU device of each model (`<model name>` libvirt sets, qemuDomainPCIControllerSetDefaultModelName), and the names it accepts. */
const MODEL_NAMES: Readonly<Record<string, readonly string[]>> = {
  "pci-bridge": ["pci-bridge"],
  "dmi-to-pci-bridge": ["i82801b11-bridge"],
  "pcie-to-pci-bridge": ["pcie-pci-bridge"],
  "pcie-root-port": ["pcie-root-port", "ioh3420"],
  "pcie-switch-upstream-port": ["x3130-upstream"],
  "pcie-switch-downstream-port": ["xio3130-downstream"],
  "pci-expander-bus": ["pxb"],
  "pcie-expander-bus": ["pxb-pcie"],
};

/** The `<target>` attributes each model takes (virDomainControllerDefParseXML, qemuValidateDomainDeviceDefControllerPCI). */
const MODEL_TARGET_ATTRS: Readonly<Record<string, readonly string[]>> = {
  "pci-bridge": ["chassisNr", "memReserve"],
  "pcie-root-port": ["chassis", "port", "hotplug"],
  "pcie-switch-downstream-port": ["chassis", "port", "hotplug"],
  "pci-expander-bus": ["busNr"],
  "pcie-expander-bus": ["busNr"],
};

/** What one bus accepts downstream (virDomainPCIAddressBusSetModel). */
interface Bus {
  model: string;
  flags: number;
  minSlot: number;
  maxSlot: number;
  /** Per slot: the functions in use (a bit each) and whether the slot aggregates (root ports). */
  slots: { functions: number; aggregate: boolean }[];
}

function newBus(model: string, hotplug: boolean): Bus {
  const hp = hotplug ? HOTPLUGGABLE : 0;
  const [flags, minSlot, maxSlot] = ((): [number, number, number] => {
    switch (model) {
      case "pci-root":
        return [AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | PCI_EXPANDER_BUS | hp, 1, 31];
      case "pci-bridge":
        return [AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | hp, 1, 31];
      case "pci-expander-bus":
        return [AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | hp, 0, 31];
      case "pcie-root":
        return [PCIE_DEVICE | PCIE_ROOT_PORT | DMI_TO_PCI_BRIDGE | PCIE_EXPANDER_BUS, 1, 31];
      case "dmi-to-pci-bridge":
        return [PCI_DEVICE | PCI_BRIDGE, 0, 31];
      case "pcie-to-pci-bridge":
        return [AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | hp, 1, 31];
      case "pcie-root-port":
      case "pcie-switch-downstream-port":
        return [AUTOASSIGN | PCIE_DEVICE | PCIE_SWITCH_UPSTREAM_PORT | PCIE_TO_PCI_BRIDGE | hp, 0, 0];
      case "pcie-switch-upstream-port":
        return [PCIE_SWITCH_DOWNSTREAM_PORT, 0, 31];
      default: // pcie-expander-bus
        return [PCIE_ROOT_PORT | DMI_TO_PCI_BRIDGE, 0, 31];
    }
  })();
  return {
    model,
    flags,
    minSlot,
    maxSlot,
    slots: Array.from({ length: 32 }, () => ({ functions: 0, aggregate: false })),
  };
}

/** A PCI address: bus (the controller index), slot, function. */
export interface PciAddr {
  bus: number;
  slot: number;
  fn: number;
}

/** `0000:BB:SS.F`, as libvirt prints an address in its errors. */
export function pciAddrString(a: PciAddr): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0");
  return `0000:${h(a.bus, 2)}:${h(a.slot, 2)}.${a.fn}`;
}

/** What a connection type is called in libvirt's errors. */
function connectName(flags: number): string {
  const names: [number, string][] = [
    [PCI_DEVICE, "standard PCI device"],
    [PCIE_DEVICE, "PCI Express device"],
    [PCIE_ROOT_PORT, "pcie-root-port"],
    [PCIE_SWITCH_UPSTREAM_PORT, "pcie-switch-upstream-port"],
    [PCIE_SWITCH_DOWNSTREAM_PORT, "pcie-switch-downstream-port"],
    [DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"],
    [PCIE_TO_PCI_BRIDGE, "pcie-to-pci-bridge"],
    [PCI_EXPANDER_BUS, "pci-expander-bus"],
    [PCIE_EXPANDER_BUS, "pcie-expander-bus"],
    [PCI_BRIDGE, "pci-bridge"],
  ];
  return names.find(([f]) => flags & f)?.[1] ?? "PCI device";
}

/** The set of PCI addresses in use and the buses (virDomainPCIAddressSet), with libvirt's search and growth. */
class PciAddressSet {
  readonly buses: Bus[] = [];
  constructor(
    readonly dryRun: boolean,
    models: ReadonlyMap<number, { model: string; hotplug: boolean }>,
    nbuses: number,
    pcieRoot: boolean,
  ) {
    for (let i = 0; i < nbuses; i++) {
      const m = models.get(i);
      this.buses.push(
        m
          ? newBus(m.model, m.hotplug)
          : newBus(i === 0 ? "pci-root" : pcieRoot ? "pcie-root-port" : "pci-bridge", true),
      );
    }
  }

  /** Whether a slot has any function in use. */
  inUse(a: PciAddr): boolean {
    return (this.buses[a.bus]?.slots[a.slot]?.functions ?? 0) !== 0;
  }

  /** Why `a` cannot take a device of `flags` (virDomainPCIAddressValidate), or undefined. */
  invalid(a: PciAddr, flags: number, fromConfig: boolean): { reason: string; allowed: string } | undefined {
    const s = pciAddrString(a);
    const bus = this.buses[a.bus];
    if (!bus)
      return {
        reason: `invalid PCI address ${s}: only PCI buses up to ${this.buses.length - 1} are available`,
        allowed: `a bus from 0 to ${this.buses.length - 1} (the index of a <controller type='pci'>)`,
      };
    let busFlags = bus.flags;
    let devFlags = flags;
    if (devFlags & INTEGRATED) {
      if (a.bus !== 0)
        return {
          reason: `the device at PCI address ${s} needs to be an integrated device (bus=0)`,
          allowed: "bus 0",
        };
      busFlags |= AUTOASSIGN;
    }
    if (fromConfig) {
      if (busFlags & TYPES_ENDPOINT) busFlags |= TYPES_ENDPOINT;
      if (devFlags & PCI_BRIDGE) devFlags |= PCI_DEVICE;
    } else if (devFlags & AUTOASSIGN && !(busFlags & AUTOASSIGN))
      return { reason: `the PCI controller with index='${a.bus}' does not allow auto-assignment`, allowed: "" };
    if (devFlags & HOTPLUGGABLE && !(busFlags & HOTPLUGGABLE))
      return {
        reason: `the device at PCI address ${s} requires hotplug capability, but the PCI controller with index='${a.bus}' doesn't support hotplug`,
        allowed: "a hotpluggable bus",
      };
    if (!(devFlags & busFlags & TYPES_MASK))
      return {
        reason: `the device at PCI address ${s} cannot be plugged into the PCI controller with index='${a.bus}' (${bus.model}): it requires a controller that accepts a ${connectName(devFlags)}`,
        allowed: `a bus that accepts a ${connectName(devFlags)}`,
      };
    if (bus.minSlot && a.slot < bus.minSlot)
      return {
        reason: `invalid PCI address ${s}: slot must be >= ${bus.minSlot}`,
        allowed: `slot ${bus.minSlot} or more`,
      };
    if (a.slot > bus.maxSlot)
      return {
        reason: `invalid PCI address ${s}: slot must be <= ${bus.maxSlot} on a ${bus.model}`,
        allowed: `slot ${bus.maxSlot === 0 ? "0" : `up to ${bus.maxSlot}`}`,
      };
    return undefined;
  }

  /** Reserves one function (virDomainPCIAddressReserveAddrInternal); `path` names the element for errors. */
  reserve(a: PciAddr, flags: number, fromConfig: boolean, path: string): void {
    if (this.dryRun) this.grow(a, flags, path);
    const bad = this.invalid(a, flags, fromConfig);
    if (bad)
      throw new DomainXmlError(bad.reason, {
        path: fromConfig ? `${path}/address` : path,
        value: pciAddrString(a),
        allowed: bad.allowed || undefined,
        fix: fromConfig
          ? "write an address on a bus that takes this device, or remove <address> (the layout puts it where libvirt would)"
          : "no bus of the definition takes this device where libvirt would put it: write its <address> (and the controller it plugs into)",
      });
    const slot = this.buses[a.bus]!.slots[a.slot]!;
    if (slot.functions & (1 << a.fn))
      throw new DomainXmlError("PCI address used twice", {
        path: `${path}/address`,
        value: pciAddrString(a),
        fix: "give each device its own slot or function, or remove <address>",
      });
    if (!slot.functions && flags & AGGREGATE_SLOT) slot.aggregate = true;
    slot.functions |= 1 << a.fn;
  }

  /** The first free place for a device of `flags` (virDomainPCIAddressGetNextAddr), reserved; grows the set in the dry run. */
  next(flags: number, fn: number, path: string): PciAddr {
    for (let bus = 0; bus < this.buses.length; bus++) {
      const b = this.buses[bus]!;
      const a = { bus, slot: b.minSlot, fn: fn === -1 ? 0 : fn };
      if (!this.compatibleOnly(b, a, flags)) continue;
      for (; a.slot <= b.maxSlot; a.slot++) {
        const s = b.slots[a.slot]!;
        if (s.functions === 0) return this.take(a, flags, path);
        if (flags & AGGREGATE_SLOT && s.aggregate) {
          if ((s.functions & (1 << a.fn)) === 0) return this.take(a, flags, path);
          if (fn === -1) {
            for (; a.fn < 8; a.fn++) if ((s.functions & (1 << a.fn)) === 0) return this.take(a, flags, path);
            a.fn = 0;
          }
        }
      }
    }
    if (!this.dryRun)
      throw new DomainXmlError("no more available PCI slots", {
        path,
        fix: "add a PCI controller with free slots (e.g. <controller type='pci' model='pcie-root-port'/>), or remove devices",
      });
    const a = { bus: this.buses.length, slot: 0, fn: fn === -1 ? 0 : fn };
    this.grow(a, flags, path);
    a.slot = this.buses[a.bus]!.minSlot;
    return this.take(a, flags, path);
  }

  /** Whether a bus's flags accept the device, the slot range aside (virDomainPCIAddressFlagsCompatible). */
  private compatibleOnly(b: Bus, a: PciAddr, flags: number): boolean {
    let busFlags = b.flags;
    if (flags & INTEGRATED) {
      if (a.bus !== 0) return false;
      busFlags |= AUTOASSIGN;
    }
    if (flags & AUTOASSIGN && !(busFlags & AUTOASSIGN)) return false;
    if (flags & HOTPLUGGABLE && !(busFlags & HOTPLUGGABLE)) return false;
    return (flags & busFlags & TYPES_MASK) !== 0;
  }

  private take(a: PciAddr, flags: number, path: string): PciAddr {
    this.reserve(a, flags, false, path);
    return { ...a };
  }

  /** Adds the buses `a` needs (virDomainPCIAddressSetGrow); `a.bus` may move past a bridge added first. */
  private grow(a: PciAddr, flags: number, path: string): void {
    let add = a.bus - this.buses.length + 1;
    if (add <= 0) return;
    let model: string;
    let needBridge = false;
    if (flags & PCI_DEVICE) {
      model = "pci-bridge";
      needBridge = !this.buses.some((b) => b.flags & PCI_BRIDGE);
      if (needBridge && add === 1) {
        add++;
        a.bus++;
      } else needBridge = false;
    } else if (flags & (PCIE_DEVICE | PCIE_SWITCH_UPSTREAM_PORT)) model = "pcie-root-port";
    else {
      const existing = Object.entries(MODEL_CONNECT).find(([, f]) => f & flags & TYPES_MASK)?.[0];
      throw new DomainXmlError(
        existing
          ? `a PCI slot is needed to connect a PCI controller model='${existing}', but none is available, and it cannot be automatically added`
          : "no PCI bus takes this device, and none can be added for it",
        {
          path,
          value: existing,
          fix:
            existing === "pcie-root-port"
              ? "remove pcie-root-ports (q35 has 31 slots, 8 ports each)"
              : "add the controller it plugs into",
        },
      );
    }
    if (needBridge) {
      // a pure PCIe guest: a pcie-root-port that takes only the pcie-to-pci-bridge, then the bridge
      const port = newBus("pcie-root-port", true);
      port.flags = PCIE_TO_PCI_BRIDGE;
      this.buses.push(port, newBus("pcie-to-pci-bridge", true));
      add -= 2;
    }
    for (; add > 0; add--) this.buses.push(newBus(model, true));
  }
}

/** A `<controller type='pci'>` (written or added by the layout), with what the command line needs. */
export interface PciController {
  readonly index: number;
  readonly model: string;
  /** The QEMU device (`<model name>`, else libvirt's default for the model). */
  readonly modelName: string;
  /** The element path (`/domain/devices/controller[N]`), or the devices path for an added one. */
  readonly path: string;
  /** Its place: written, or laid out. */
  addr?: PciAddr;
  /** Written `multifunction='on|off'`, or on at function 0 of a slot shared with others. */
  multi?: boolean;
  chassisNr?: number;
  chassis?: number;
  port?: number;
  busNr?: number;
  /** `<target memReserve>` of a pci-bridge (KiB): the memory window kept for hot-plugged devices. */
  memReserveKiB?: number;
  /** `<target hotplug='off'>` (false) or 'on' (true). */
  hotplug?: boolean;
  /** `<target><node>`: the guest NUMA node of an expander bus. */
  numaNode?: number;
  /** Added by the layout (not in the definition). */
  readonly added?: boolean;
}

/** A device that needs a PCI address, in libvirt's order (qemuDomainAssignDevicePCISlots). */
export interface PciRequest {
  /** Where the address goes (the element, or the key of an implicit device). */
  readonly key: object;
  /** What it connects as ({@link PCI_DEVICE} or {@link PCIE_DEVICE}, with {@link AUTOASSIGN}...). */
  readonly flags: number;
  /** Path for errors. */
  readonly path: string;
  /** An ICH9 USB2 controller: its index and function (companions share one slot). */
  readonly usb2?: { readonly index: string; readonly fn: number };
}

/** What the layout needs from the definition, besides the requests. */
export interface PciLayoutInput {
  /** q35 (`pcie-root`) or the PC machine (`pci-root`). */
  readonly pcieRoot: boolean;
  /** The i440FX (`pc*`) or q35 chipset, whose fixed places are reserved. */
  readonly chipset: "i440fx" | "q35" | "other";
  /** The `<controller type='pci'>` elements, in document order. */
  readonly controllerEls: readonly XmlElement[];
  /** Their paths (`/domain/devices/controller[N]`). */
  readonly controllerPaths: readonly string[];
  /** Devices written with a PCI address: the address, the device's flags and its path. */
  readonly written: readonly { readonly addr: PciAddr; readonly flags: number; readonly path: string }[];
  /** The primary video when it wants an address (its key and flags). */
  readonly primaryVideo?: PciRequest;
  /** q35: ICH9 UHCI1 controllers without an address (libvirt puts the first at 1d, the next at 1a). */
  readonly usb2Masters: readonly PciRequest[];
  /** ICH9 USB2 controllers written with a PCI address: their index and address. */
  readonly usb2Written: readonly { readonly index: string; readonly addr: PciAddr }[];
  /** q35: an ICH9 sound card without an address (libvirt puts it at 1b when free). */
  readonly ich9Sound?: PciRequest;
  /** The devices without an address, in libvirt's order. */
  readonly requests: readonly PciRequest[];
  /** The guest NUMA cell count (an expander bus's `<node>` must name one). */
  readonly numaCells: number;
}

/** The PCI layout: where each requested device goes, every PCI controller, and the buses. */
export interface PciLayout {
  readonly addrs: Map<object, PciAddr>;
  /** Every PCI controller but the root, by index. */
  readonly controllers: PciController[];
  /** The buses by index: model and slot range. */
  readonly buses: { model: string; minSlot: number; maxSlot: number }[];
  /** `bus:slot` of every slot with a function other than 0 in use (libvirt sets multifunction on its function 0). */
  readonly multiSlots: Set<string>;
}

/**
 * A number as libvirt reads addresses (virStrToLong_ui base 0 as the XML writes them): hex with
 * `0x`, or decimal; `NaN` for anything else (and for no value), for the caller to refuse.
 */
export function libvirtUint(value: string | undefined): number {
  if (value === undefined) return NaN;
  return /^0x[0-9a-f]+$/i.test(value) ? parseInt(value, 16) : /^[0-9]+$/.test(value) ? Number(value) : NaN;
}

/** A number of a controller `<target>` or `<address>` (libvirt: decimal, or hex with 0x for addresses). */
function num(path: string, value: string | undefined, max: number, fix: string): number {
  const n = libvirtUint(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max)
    throw new DomainXmlError("not a whole number in range", {
      path,
      value: value ?? "",
      allowed: `a number from 0 to ${max}`,
      fix,
    });
  return n;
}

/**
 * Whether a device element has a PCI address to keep: an `<address type='pci'>` that is not all
 * zeros (libvirt lays out a device whose PCI address is empty or 0000:00:00.0 as one without,
 * virDeviceInfoPCIAddressIsWanted).
 */
export function hasPciAddr(el: XmlElement): boolean {
  const a = firstChild(el, "address");
  if (!a || getAttr(a, "type") !== "pci") return false;
  return ["domain", "bus", "slot", "function"].some((n) => !/^(0x0*|0+)?$/i.test(getAttr(a, n) ?? ""));
}

/** A written `<address type='pci'>` of a device element, or undefined when it has none (or another type, or all zeros). */
export function writtenPciAddr(el: XmlElement, path: string): { addr: PciAddr; multi?: boolean } | undefined {
  const a = firstChild(el, "address");
  if (!a || getAttr(a, "type") !== "pci" || !hasPciAddr(el)) return undefined;
  const ap = `${path}/address`;
  const fix = "write e.g. <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>";
  const domain = num(`${ap}/@domain`, getAttr(a, "domain") ?? "0", 0xffff, fix);
  if (domain !== 0)
    throw new DomainXmlError("only PCI domain 0 is available", {
      path: `${ap}/@domain`,
      value: getAttr(a, "domain"),
      fix,
    });
  const addr = {
    bus: num(`${ap}/@bus`, getAttr(a, "bus") ?? "0", 0xff, fix),
    slot: num(`${ap}/@slot`, getAttr(a, "slot") ?? "0", 0x1f, fix),
    fn: num(`${ap}/@function`, getAttr(a, "function") ?? "0", 7, fix),
  };
  const mf = getAttr(a, "multifunction");
  if (mf !== undefined && mf !== "on" && mf !== "off")
    throw new DomainXmlError("invalid multifunction", {
      path: `${ap}/@multifunction`,
      value: mf,
      allowed: "on, off",
      fix: "write multifunction='on' or 'off'",
    });
  return { addr, ...(mf === undefined ? {} : { multi: mf === "on" }) };
}

/** Reads the `<controller type='pci'>` elements: model, index, model name, target, address; checks what libvirt checks. */
function readControllers(input: PciLayoutInput): { root: string; list: PciController[] } {
  const list: PciController[] = [];
  let root: string | undefined;
  const seen = new Set<number>();
  // an index not written is the lowest unused one (virDomainControllerFindUnusedIndex), 0 for the root
  const indexes = input.controllerEls.map((el, i) => {
    const v = getAttr(el, "index");
    return v === undefined ? undefined : num(`${input.controllerPaths[i]}/@index`, v, 255, "write e.g. index='1'");
  });
  const taken = new Set(indexes.filter((n) => n !== undefined));
  input.controllerEls.forEach((el, i) => {
    if (indexes[i] !== undefined) return;
    let n = 0;
    if (!/^pcie?-root$/.test(getAttr(el, "model") ?? "")) while (taken.has(n)) n++;
    taken.add(n);
    indexes[i] = n;
  });
  input.controllerEls.forEach((el, i) => {
    const path = input.controllerPaths[i]!;
    const model = getAttr(el, "model");
    const index = indexes[i]!;
    if (seen.has(index))
      throw new DomainXmlError(`multiple 'pci' controllers with index '${index}'`, {
        path: `${path}/@index`,
        value: String(index),
        fix: "give each PCI controller its own index",
      });
    seen.add(index);
    if (model === undefined || !(PCI_CONTROLLER_MODELS as readonly string[]).includes(model))
      throw new DomainXmlError("unknown PCI controller model", {
        path: `${path}/@model`,
        value: model ?? "",
        allowed: PCI_CONTROLLER_MODELS.join(", "),
        fix: "write one of libvirt's PCI controller models",
      });
    if (model === "pci-root" || model === "pcie-root") {
      if (index !== 0)
        throw new DomainXmlError("pci-root and pcie-root controllers should have index 0", {
          path: `${path}/@index`,
          value: String(index),
          fix: "write index='0'",
        });
      const want = input.pcieRoot ? "pcie-root" : "pci-root";
      if (model !== want)
        throw new DomainXmlError(
          `the PCI controller with index='0' must be model='${want}' for this machine type, but model='${model}' was found instead`,
          { path: `${path}/@model`, value: model, allowed: want, fix: `write model='${want}'` },
        );
      if (firstChild(el, "address"))
        throw new DomainXmlError("pci-root and pcie-root controllers should not have an address", {
          path: `${path}/address`,
          fix: "remove <address>",
        });
      root = model;
      return;
    }
    if (index === 0)
      throw new DomainXmlError(`a ${model} cannot have index 0: that is the root bus`, {
        path: `${path}/@index`,
        value: "0",
        fix: "write index='1' or above",
      });
    if (!input.pcieRoot && PCIE_ONLY_MODELS.includes(model))
      throw new DomainXmlError(`${model} controllers are not supported with this machine type`, {
        path: `${path}/@model`,
        value: model,
        allowed: "pci-bridge, pci-expander-bus (the PC machine's PCI bus)",
        fix: "use a q35 machine for PCI Express controllers, or a pci-bridge",
      });
    if (model === "pcie-expander-bus" && !input.pcieRoot)
      throw new DomainXmlError("pcie-expander-bus controllers are not supported with this machine type", {
        path: `${path}/@model`,
        value: model,
        fix: "use a q35 machine, or model='pci-expander-bus' on the PC machine",
      });
    if (model === "pci-expander-bus" && input.pcieRoot)
      throw new DomainXmlError("pci-expander-bus controllers are not supported with this machine type", {
        path: `${path}/@model`,
        value: model,
        fix: "use model='pcie-expander-bus' on q35, or a PC machine",
      });
    const me = firstChild(el, "model");
    const names = MODEL_NAMES[model]!;
    const modelName = getAttr(me, "name") ?? names[0]!;
    if (!names.includes(modelName))
      throw new DomainXmlError(`PCI controller model name '${modelName}' is not valid for a ${model}`, {
        path: `${path}/model/@name`,
        value: modelName,
        allowed: names.join(", "),
        fix: `write <model name='${names[0]}'/> or remove <model>`,
      });
    const c: PciController = { index, model, modelName, path };
    const t = firstChild(el, "target");
    if (t) {
      const allowed = MODEL_TARGET_ATTRS[model] ?? [];
      for (const a of t.attrs)
        if (!allowed.includes(a.name))
          throw new DomainXmlError(`a ${model} takes no target ${a.name}`, {
            path: `${path}/target/@${a.name}`,
            value: a.value,
            allowed: allowed.join(", ") || "none",
            fix: "remove the attribute",
          });
      const tn = (name: string, max: number) => {
        const v = getAttr(t, name);
        return v === undefined ? undefined : num(`${path}/target/@${name}`, v, max, `write e.g. ${name}='1'`);
      };
      const chassisNr = tn("chassisNr", 255);
      if (chassisNr !== undefined) {
        if (chassisNr < 1)
          throw new DomainXmlError("PCI controller chassisNr out of range", {
            path: `${path}/target/@chassisNr`,
            value: String(chassisNr),
            allowed: "1 to 255",
            fix: "write chassisNr='1' or above",
          });
        c.chassisNr = chassisNr;
      }
      const chassis = tn("chassis", 255);
      if (chassis !== undefined) c.chassis = chassis;
      const port = tn("port", 255);
      if (port !== undefined) c.port = port;
      const memReserve = tn("memReserve", 0xffffffff);
      if (memReserve !== undefined) c.memReserveKiB = memReserve;
      const busNr = tn("busNr", 254);
      if (busNr !== undefined) {
        if (busNr < 1)
          throw new DomainXmlError("PCI controller busNr out of range", {
            path: `${path}/target/@busNr`,
            value: String(busNr),
            allowed: "1 to 254",
            fix: "write busNr='1' or above",
          });
        c.busNr = busNr;
      }
      const hp = getAttr(t, "hotplug");
      if (hp !== undefined) {
        if (hp !== "on" && hp !== "off")
          throw new DomainXmlError("invalid hotplug", {
            path: `${path}/target/@hotplug`,
            value: hp,
            allowed: "on, off",
            fix: "write hotplug='on' or 'off'",
          });
        c.hotplug = hp === "on";
      }
      const kids = childElements(t);
      for (const k of kids)
        if (k.name !== "node" || (model !== "pci-expander-bus" && model !== "pcie-expander-bus"))
          throw new DomainXmlError(`a ${model}'s target takes no <${k.name}>`, {
            path: `${path}/target/${k.name}`,
            fix: "remove it (<node> is for expander buses)",
          });
      const node = firstChild(t, "node");
      if (node) {
        const n = num(
          `${path}/target/node`,
          (textContent(node) ?? "").trim(),
          65535,
          "write the guest NUMA node, e.g. <node>0</node>",
        );
        if (n >= input.numaCells)
          throw new DomainXmlError(
            `${model} with index ${index} is configured for a NUMA node (${n}) not present in the domain's <cpu><numa> array (${input.numaCells})`,
            {
              path: `${path}/target/node`,
              value: String(n),
              allowed: input.numaCells ? `0 to ${input.numaCells - 1}` : "none: the domain has no NUMA cells",
              fix: "name a guest NUMA cell of <cpu><numa>, or remove <node>",
            },
          );
        c.numaNode = n;
      }
    }
    const w = writtenPciAddr(el, path);
    if (firstChild(el, "address") && getAttr(firstChild(el, "address"), "type") !== "pci")
      throw new DomainXmlError("a PCI controller's address must be a PCI address", {
        path: `${path}/address/@type`,
        value: getAttr(firstChild(el, "address"), "type"),
        fix: "write type='pci' or remove <address>",
      });
    if (w) {
      c.addr = w.addr;
      if (w.multi !== undefined) c.multi = w.multi;
    }
    list.push(c);
  });
  return { root: root ?? (input.pcieRoot ? "pcie-root" : "pci-root"), list: list.sort((a, b) => a.index - b.index) };
}

/** What a PCI controller connects as upstream (virDomainPCIControllerModelToConnectType). */
function controllerFlags(c: PciController): number {
  return MODEL_CONNECT[c.model] ?? 0;
}

/**
 * Lays out the PCI buses and devices as libvirt does (qemuDomainAssignPCIAddresses): two passes,
 * the first (dry run) to find and add the buses missing, the second to place every controller
 * and device. Throws a {@link DomainXmlError} naming the element for what libvirt refuses.
 */
export function layoutPci(input: PciLayoutInput): PciLayout {
  const { root, list } = readControllers(input);
  const maxIdx = Math.max(0, ...list.map((c) => c.index));
  const written = list.filter((c) => c.addr);
  let controllers = list;
  let nbuses = maxIdx + 1;
  // a dmi-to-pci-bridge the chipset step put at 1e in the first pass (its address is set in the second)
  const fixedDmi = new Set<number>();

  const run = (dryRun: boolean): { set: PciAddressSet; addrs: Map<object, PciAddr> } => {
    const models = new Map<number, { model: string; hotplug: boolean }>([[0, { model: root, hotplug: true }]]);
    for (const c of controllers) models.set(c.index, { model: c.model, hotplug: c.hotplug !== false });
    const set = new PciAddressSet(dryRun, models, nbuses, input.pcieRoot);
    const addrs = new Map<object, PciAddr>();
    // the addresses the definition writes (qemuDomainCollectPCIAddress)
    for (const c of written) set.reserve(c.addr!, controllerFlags(c), true, c.path);
    for (const w of input.written) set.reserve(w.addr, w.flags, true, w.path);
    // the chipset's own places (qemuDomainValidateDevicePCISlotsChipsets)
    const fixed = (a: PciAddr, req: PciRequest) => {
      set.reserve(a, PCIE_DEVICE | PCI_DEVICE, true, req.path);
      addrs.set(req.key, a);
    };
    if (input.chipset === "i440fx") {
      // PIIX3: the ISA bridge 01.0, IDE 01.1, the USB controller 01.2, ACPI 01.3
      for (const fn of [0, 1, 3]) set.reserve({ bus: 0, slot: 1, fn }, PCI_DEVICE, true, "/domain/devices");
      reserveFree(set, { bus: 0, slot: 1, fn: 2 });
      const v = input.primaryVideo;
      if (v) {
        if (set.inUse({ bus: 0, slot: 2, fn: 0 })) addrs.set(v.key, set.next(v.flags, -1, v.path));
        else fixed({ bus: 0, slot: 2, fn: 0 }, v);
      }
    } else if (input.chipset === "q35") {
      for (const u of input.usb2Masters) {
        const slot = !set.inUse({ bus: 0, slot: 0x1d, fn: 0 })
          ? 0x1d
          : !set.inUse({ bus: 0, slot: 0x1a, fn: 0 })
            ? 0x1a
            : 0;
        if (slot) fixed({ bus: 0, slot, fn: 0 }, u);
      }
      for (const c of controllers)
        if (c.model === "dmi-to-pci-bridge" && !c.addr && !set.inUse({ bus: 0, slot: 0x1e, fn: 0 })) {
          set.reserve({ bus: 0, slot: 0x1e, fn: 0 }, PCIE_DEVICE, true, c.path);
          if (!dryRun) c.addr = { bus: 0, slot: 0x1e, fn: 0 };
          else fixedDmi.add(c.index);
        }
      // ICH9: the LPC bridge 1f.0, SATA 1f.2, SMBus 1f.3
      set.reserve({ bus: 0, slot: 0x1f, fn: 0 }, PCIE_DEVICE, true, "/domain/devices");
      reserveFree(set, { bus: 0, slot: 0x1f, fn: 2 });
      set.reserve({ bus: 0, slot: 0x1f, fn: 3 }, PCIE_DEVICE, true, "/domain/devices");
      const v = input.primaryVideo;
      if (v) {
        if (set.inUse({ bus: 0, slot: 1, fn: 0 })) addrs.set(v.key, set.next(v.flags, -1, v.path));
        else fixed({ bus: 0, slot: 1, fn: 0 }, v);
      }
      if (input.ich9Sound && !set.inUse({ bus: 0, slot: 0x1b, fn: 0 }))
        fixed({ bus: 0, slot: 0x1b, fn: 0 }, input.ich9Sound);
    }
    // the PC machine keeps one slot for a future bridge (first pass only)
    if (dryRun && !input.pcieRoot && set.buses.some((b) => !fullyReserved(b)))
      set.next(AUTOASSIGN | PCI_DEVICE, -1, "/domain/devices");
    // PCI controllers, then the devices (qemuDomainAssignDevicePCISlots)
    for (const c of controllers)
      if (!c.addr && !(dryRun && fixedDmi.has(c.index))) {
        const a = set.next(controllerFlags(c), -1, c.path);
        if (!dryRun) c.addr = a;
      }
    // an ICH9 USB2 group shares the slot of its member with an address (written, or the chipset's 1d/1a)
    const usb2 = new Map<string, PciAddr>(input.usb2Written.map((u) => [u.index, u.addr]));
    for (const u of input.usb2Masters) {
      const at = addrs.get(u.key);
      if (at && u.usb2 && !usb2.has(u.usb2.index)) usb2.set(u.usb2.index, at);
    }
    for (const r of input.requests) {
      if (addrs.has(r.key)) continue;
      if (r.usb2) {
        const at = usb2.get(r.usb2.index);
        if (at) {
          const a = { ...at, fn: r.usb2.fn };
          set.reserve(a, r.flags, true, r.path);
          addrs.set(r.key, a);
          continue;
        }
        const a = set.next(r.flags, r.usb2.fn, r.path);
        usb2.set(r.usb2.index, a);
        addrs.set(r.key, a);
        continue;
      }
      addrs.set(r.key, set.next(r.flags, -1, r.path));
    }
    return { set, addrs };
  };

  // first pass: the buses missing, and one spare pcie-root-port for hotplug on a q35 whose
  // definition states no PCI controller of its own
  const first = run(true);
  if (maxIdx <= 0 && first.set.buses.length > maxIdx + 1 && input.pcieRoot)
    first.set.next(AUTOASSIGN | PCIE_DEVICE, -1, "/domain/devices");
  const added: PciController[] = [];
  for (let i = 1; i < first.set.buses.length; i++) {
    if (controllers.some((c) => c.index === i)) continue;
    const model = first.set.buses[i]!.model;
    const c: PciController = {
      index: i,
      model,
      modelName: MODEL_NAMES[model]![0]!,
      path: "/domain/devices",
      added: true,
    };
    added.push(c);
    first.set.next(controllerFlags(c), -1, "/domain/devices");
  }
  nbuses = first.set.buses.length;
  controllers = [...list, ...added].sort((a, b) => a.index - b.index);
  // second pass: every controller and device in its place
  const { set, addrs } = run(false);
  // defaults libvirt fills in once the addresses are known
  for (const c of controllers) {
    const a = c.addr!;
    if (c.model === "pci-bridge" && c.chassisNr === undefined) c.chassisNr = c.index;
    if (c.model === "pcie-root-port") {
      c.chassis ??= c.index;
      c.port ??= (a.slot << 3) + a.fn;
    }
    if (c.model === "pcie-switch-downstream-port") {
      c.chassis ??= c.index;
      c.port ??= a.slot;
    }
    if ((c.model === "pci-expander-bus" || c.model === "pcie-expander-bus") && c.busNr === undefined) {
      const lowest = Math.min(256, ...controllers.map((o) => o.busNr ?? 256));
      if (lowest <= 2)
        throw new DomainXmlError(
          `no free busNr lower than the current lowest busNr is available to auto-assign to bus ${c.index}: it must be written`,
          { path: `${c.path}/target/@busNr`, fix: "write <target busNr='...'/>" },
        );
      c.busNr = lowest - 2;
    }
    if (c.index <= a.bus)
      throw new DomainXmlError(
        `PCI controller at index ${c.index} has bus='0x${a.bus.toString(16).padStart(2, "0")}', but index must be larger than bus`,
        { path: `${c.path}/address/@bus`, value: String(a.bus), fix: "put the controller on a bus of a lower index" },
      );
  }
  const multiSlots = new Set<string>();
  set.buses.forEach((b, bus) =>
    b.slots.forEach((s, slot) => {
      if (s.functions & ~1) multiSlots.add(`${bus}:${slot}`);
    }),
  );
  for (const c of controllers)
    if (c.multi === undefined && c.addr!.fn === 0 && multiSlots.has(`${c.addr!.bus}:${c.addr!.slot}`)) c.multi = true;
  return {
    addrs,
    controllers,
    buses: set.buses.map((b) => ({ model: b.model, minSlot: b.minSlot, maxSlot: b.maxSlot })),
    multiSlots,
  };
}

function fullyReserved(b: Bus): boolean {
  for (let i = b.minSlot; i <= b.maxSlot; i++) if (!b.slots[i]!.functions) return false;
  return true;
}

/** Reserves a chipset function unless the definition already wrote a device there. */
function reserveFree(set: PciAddressSet, a: PciAddr): void {
  const s = set.buses[a.bus]?.slots[a.slot];
  if (s && !(s.functions & (1 << a.fn))) s.functions |= 1 << a.fn;
}

/** `0xS` or `0xS.0xF`, as libvirt writes `addr`. */
export function addrProp(a: PciAddr): string {
  return a.fn === 0 ? `0x${a.slot.toString(16)}` : `0x${a.slot.toString(16)}.0x${a.fn.toString(16)}`;
}

/** The `-device` of a PCI controller (qemuBuildControllerPCIDevProps). */
export function pciControllerDevice(c: PciController, rootBus: string): Record<string, unknown> {
  const a = c.addr!;
  const placement = {
    bus: a.bus === 0 ? rootBus : `pci.${a.bus}`,
    ...(c.multi !== undefined ? { multifunction: c.multi } : {}),
    addr: addrProp(a),
  };
  const id = `pci.${c.index}`;
  const hotplug = c.hotplug !== undefined ? { hotplug: c.hotplug } : {};
  switch (c.model) {
    case "pci-bridge":
      return {
        driver: c.modelName,
        chassis_nr: c.chassisNr,
        ...(c.memReserveKiB !== undefined ? { "mem-reserve": c.memReserveKiB * 1024 } : {}),
        id,
        ...placement,
      };
    case "pcie-root-port":
    case "pcie-switch-downstream-port":
      return { driver: c.modelName, port: c.port, chassis: c.chassis, id, ...hotplug, ...placement };
    case "pci-expander-bus":
    case "pcie-expander-bus":
      return {
        driver: c.modelName,
        bus_nr: c.busNr,
        id,
        ...(c.numaNode !== undefined ? { numa_node: c.numaNode } : {}),
        ...placement,
      };
    default: // dmi-to-pci-bridge, pcie-to-pci-bridge, pcie-switch-upstream-port
      return { driver: c.modelName, id, ...hotplug, ...placement };
  }
}

/** The USB devices of a definition, by element path and what each is (for "USB is disabled" errors). */
function usbDevices(devices: XmlElement): { path: string; what: string }[] {
  const out: { path: string; what: string }[] = [];
  const seen: Record<string, number> = {};
  for (const el of childElements(devices)) {
    const n = (seen[el.name] = (seen[el.name] ?? 0) + 1);
    const path = `/domain/devices/${el.name}[${n}]`;
    const usb =
      (el.name === "input" && getAttr(el, "bus") === "usb") ||
      el.name === "hub" ||
      (el.name === "redirdev" && getAttr(el, "bus") === "usb") ||
      (el.name === "disk" && getAttr(firstChild(el, "target"), "bus") === "usb") ||
      (el.name === "hostdev" && getAttr(el, "type") === "usb") ||
      (el.name === "sound" && getAttr(el, "model") === "usb") ||
      (el.name === "controller" && getAttr(el, "type") === "ccid");
    if (usb) out.push({ path, what: el.name });
  }
  return out;
}

/**
 * The USB controller rules libvirt checks (virDomainDefAddController, qemuValidateDomainDef...):
 * `model='none'` disables USB (no other USB controller, no USB device), and a machine without
 * PCI (isapc) has no bus for a USB controller.
 */
export function checkUsbControllers(root: XmlElement, machine: string): void {
  const devices = firstChild(root, "devices");
  if (!devices) return;
  const usb = childElements(devices, "controller")
    .map((el, i) => ({ el, path: `/domain/devices/controller[${i + 1}]` }))
    .filter((c) => getAttr(c.el, "type") === "usb");
  const none = usb.find((c) => getAttr(c.el, "model") === "none");
  if (none) {
    const other = usb.find((c) => c !== none);
    if (other)
      throw new DomainXmlError("can't add another USB controller: USB is disabled for this domain", {
        path: other.path,
        value: getAttr(other.el, "model"),
        fix: "remove <controller type='usb' model='none'/> or the other USB controller",
      });
    const dev = usbDevices(devices)[0];
    if (dev)
      throw new DomainXmlError(`can't add a USB ${dev.what} device: the USB bus is disabled`, {
        path: dev.path,
        fix: "remove <controller type='usb' model='none'/>, or put the device on another bus",
      });
  }
  const pciUsb = usb.find((c) => getAttr(c.el, "model") !== "none");
  if (machine === "isapc" && pciUsb)
    throw new DomainXmlError("no PCI buses available: the isapc machine has no PCI bus for a USB controller", {
      path: pciUsb.path,
      value: getAttr(pciUsb.el, "model"),
      fix: "remove the USB controller (or write model='none'), or use the pc or q35 machine",
    });
}

/**
 * The iothreads of a virtio-scsi controller's `<driver>` as libvirt writes them
 * (qemuBuildControllerSCSIDevProps): `iothread='N'` as `iothread`, `<iothreads><iothread
 * id='N'><queue id='Q'/>` as `iothread-vq-mapping`; each must be one of the domain's iothreads
 * (`ids`, from `<iothreads>`/`<iothreadids>`), and queues are mapped all or none, each once,
 * below `queues`.
 */
export function scsiIothreadProps(
  el: XmlElement | undefined,
  path: string,
  ids: readonly number[],
): Record<string, unknown> {
  const driver = el && firstChild(el, "driver");
  if (!driver) return {};
  const dp = `${path}/driver`;
  const known = (value: string | undefined, at: string): number => {
    const n = value !== undefined && /^[0-9]{1,9}$/.test(value) ? Number(value) : NaN;
    if (!ids.includes(n))
      throw new DomainXmlError(`cannot find 'iothread' : ${value ?? ""}`, {
        path: at,
        value,
        allowed: ids.length ? `an iothread of the domain: ${ids.join(", ")}` : "none: the domain has no <iothreads>",
        fix: "name an iothread the domain defines (<iothreads> / <iothreadids>)",
      });
    return n;
  };
  const single = getAttr(driver, "iothread");
  const list = firstChild(driver, "iothreads");
  if (single !== undefined && list)
    throw new DomainXmlError("'iothread' and '<iothreads>' are mutually exclusive", {
      path: `${dp}/@iothread`,
      value: single,
      fix: "write either iothread='N' or <iothreads>, not both",
    });
  if (single !== undefined) return { iothread: `iothread${known(single, `${dp}/@iothread`)}` };
  if (!list) return {};
  const queuesAttr = getAttr(driver, "queues");
  const queues = queuesAttr !== undefined && /^[0-9]+$/.test(queuesAttr) ? Number(queuesAttr) : undefined;
  const used = new Set<number>();
  let withQueues = 0;
  const threads = childElements(list);
  const mapping = threads.map((t, i) => {
    const tp = `${dp}/iothreads/${t.name}[${i + 1}]`;
    if (t.name !== "iothread")
      throw new DomainXmlError("only <iothread> elements go in <iothreads>", { path: tp, fix: "remove it" });
    for (const a of t.attrs)
      if (a.name !== "id")
        throw new DomainXmlError(`an <iothread> mapping takes no ${a.name}`, {
          path: `${tp}/@${a.name}`,
          value: a.value,
          fix: "remove it",
        });
    const id = known(getAttr(t, "id"), `${tp}/@id`);
    const vqs = childElements(t).map((q, j) => {
      const qp = `${tp}/${q.name}[${j + 1}]`;
      if (q.name !== "queue")
        throw new DomainXmlError("only <queue> elements go in an <iothread> mapping", { path: qp, fix: "remove it" });
      const v = getAttr(q, "id");
      const n = v !== undefined && /^[0-9]{1,9}$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n) || (queues !== undefined && n >= queues))
        throw new DomainXmlError("virtqueue id out of range", {
          path: `${qp}/@id`,
          value: v,
          allowed: queues !== undefined ? `0 to ${queues - 1} (driver queues='${queues}')` : "a whole number",
          fix: "name a queue of the controller",
        });
      if (used.has(n))
        throw new DomainXmlError(`virtqueue '${n}' is mapped more than once`, {
          path: `${qp}/@id`,
          value: v,
          fix: "map each queue to one iothread",
        });
      used.add(n);
      return n;
    });
    if (vqs.length) withQueues++;
    return { iothread: `iothread${id}`, ...(vqs.length ? { vqs } : {}) };
  });
  if (withQueues !== 0 && withQueues !== threads.length)
    throw new DomainXmlError("either all or none of the <iothread> mappings must have <queue>s", {
      path: `${dp}/iothreads`,
      fix: "give every <iothread> its queues, or none",
    });
  if (queues !== undefined && withQueues && used.size !== queues)
    throw new DomainXmlError("every virtqueue must be mapped to an iothread", {
      path: `${dp}/iothreads`,
      value: String(used.size),
      allowed: `${queues} queues (driver queues='${queues}')`,
      fix: "map each queue of the controller",
    });
  return mapping.length ? { "iothread-vq-mapping": mapping } : {};
}

/** An ICH9 USB2 controller (EHCI1 or a UHCI companion), which libvirt groups by index. */
const isUsb2 = (c: { type: string | undefined; model: string | undefined }) =>
  c.type === "usb" && /^ich9-(ehci1|uhci[123])$/.test(c.model ?? "");

/**
 * The indexes libvirt gives controllers written without one (virDomainAssignControllerIndexes),
 * set on the view in place: the lowest index unused by controllers of the type, except an ICH9
 * USB2 controller right after another USB2 one, which joins its group unless the group already
 * has that model.
 */
export function assignControllerIndexes(
  controllers: { type: string | undefined; index: string | undefined; model: string | undefined }[],
): void {
  controllers.forEach((c, outer) => {
    if (c.index !== undefined) return;
    let prev: (typeof controllers)[number] | undefined;
    if (outer > 0 && isUsb2(c)) {
      for (let p = outer - 1; p >= 0 && !prev; p--) if (controllers[p]!.type === "usb") prev = controllers[p];
      if (prev && !isUsb2(prev)) prev = undefined;
      if (prev && controllers.some((o) => o.type === "usb" && o.index === prev!.index && o.model === c.model))
        prev = undefined;
      if (prev) c.index = prev.index;
    }
    if (!prev) {
      let n = 0;
      while (controllers.some((o) => o.type === c.type && o.index !== undefined && Number(o.index) === n)) n++;
      c.index = String(n);
    }
  });
}
