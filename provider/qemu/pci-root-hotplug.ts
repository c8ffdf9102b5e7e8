/**
 * Task C3 (issue 12, round 2): ACPI hotplug on the PC machine's root bus, as libvirt writes it
 * (qemuBuildGlobalControllerCommandLine): `<controller type='pci' model='pci-root'><target
 * hotplug='on|off'/>` is `-global PIIX4_PM.acpi-root-pci-hotplug=on|off`.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr } from "../xml/tree";

/**
 * The `-global` arguments for the `<target>` of the controllers (only `hotplug` of the PC
 * root bus is built); any other controller `<target>` is refused naming it.
 * @param controllers the `<controller>` elements of `<devices>`, in document order
 * @param add appends arguments to the command line
 */
export function buildPciRootHotplug(controllers: readonly XmlElement[], add: (...a: string[]) => void): void {
  controllers.forEach((c, i) => {
    const target = firstChild(c, "target");
    if (!target) return;
    const at = `/domain/devices/controller[${i + 1}]/target`;
    if (getAttr(c, "type") !== "pci" || getAttr(c, "model") !== "pci-root")
      throw new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
        path: at,
        value: getAttr(c, "model") ?? getAttr(c, "type"),
        allowed: "hotplug on the pci-root controller of the PC machine",
        category: "unsupported configuration",
        fix: "remove <target> from this controller, or use the libvirt backend",
      });
    const hotplug = getAttr(target, "hotplug");
    if (hotplug !== "on" && hotplug !== "off")
      throw new DomainXmlError("is not a valid value", {
        path: `${at}/@hotplug`,
        value: hotplug,
        allowed: "on, off",
        category: "unsupported configuration",
        fix: "write hotplug='on' or hotplug='off'",
      });
    if (childElements(target).length > 0 || target.attrs.length !== 1)
      throw new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
        path: at,
        value: target.attrs.map((a) => a.name).join(" "),
        allowed: "hotplug",
        category: "unsupported configuration",
        fix: "keep only hotplug on the root bus's <target>",
      });
    add("-global", `PIIX4_PM.acpi-root-pci-hotplug=${hotplug}`);
  });
}
