/**
 * What a connection offers for the hwuuid, and the policy that turns a requested `hwuuidMode`
 * into the mode a domain gets: beside the capability probe of each backend
 * (`VirshBackend.probe`, `QemuDirectBackend.probe`), which calls {@link hwuuidModeFor}.
 *
 * Pure: no I/O, no Pulumi.
 */
import type { HwuuidMode, LibvirtCapabilities } from "./domain-backend";
import type { HwuuidModeInput, InputFailure } from "../desired/inputs";

/** The first libvirt release with `<hwuuid>`. */
export const HWUUID_MIN_LIBVIRT = "11.7.0";

/** Compares dotted versions numerically: negative when `a` is older than `b`, 0 when equal, positive when newer. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Decides the best hwuuid mode a libvirt connection offers from its versions and driver. */
export function hwuuidModeFor(
  caps: Omit<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason">,
): Pick<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason"> {
  if (compareVersions(caps.libvirtVersion, HWUUID_MIN_LIBVIRT) >= 0) return { hwuuidMode: "native" };
  if (caps.hypervisor === "QEMU") return { hwuuidMode: "passthrough" };
  return {
    hwuuidMode: undefined,
    hwuuidUnsupportedReason: `libvirt ${caps.libvirtVersion} with the ${caps.hypervisor} driver has neither <hwuuid> (libvirt >= ${HWUUID_MIN_LIBVIRT}) nor the QEMU command-line passthrough`,
  };
}

/**
 * Resolves a requested `hwuuidMode` (`auto` when absent) against what the connection at `uri`
 * offers: the mode, or a per-property failure of `hwuuidMode` saying why it cannot be had.
 */
export function resolveMode(
  requested: HwuuidModeInput | undefined,
  caps: LibvirtCapabilities,
  uri: string,
): { mode?: HwuuidMode; failure?: InputFailure } {
  const r = requested ?? "auto";
  if (r === "auto") {
    if (caps.hwuuidMode) return { mode: caps.hwuuidMode };
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: ${caps.hwuuidUnsupportedReason}; fix: connect to a QEMU/KVM libvirt`,
      },
    };
  }
  if (r === "native" && compareVersions(caps.libvirtVersion, HWUUID_MIN_LIBVIRT) < 0) {
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: "native" needs libvirt >= ${HWUUID_MIN_LIBVIRT}, but the daemon at ${uri} runs libvirt ${caps.libvirtVersion}; fix: use hwuuidMode "auto" or "passthrough" (the <qemu:commandline> -uuid fallback), or upgrade libvirt`,
      },
    };
  }
  if (r === "passthrough" && caps.hypervisor !== "QEMU") {
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: "passthrough" needs the QEMU driver; ${uri} runs ${caps.hypervisor}; fix: use "auto"`,
      },
    };
  }
  return { mode: r };
}
