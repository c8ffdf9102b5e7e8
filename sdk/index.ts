/** pulumi-libvirt-domain: Pulumi resources for libvirt/QEMU domains that keep their identity. */
export { Domain, DomainArgs, DomainDiskArgs, DomainInterfaceArgs, DomainConnectionArgs } from "./domain";
export { DiskImage, DiskImageArgs, DomainDisk, DomainDiskResourceArgs } from "./disk";
export { DomainFleet, DomainFleetArgs, FleetHost, FleetHwuuidPolicy, FleetPlanError } from "./fleet";
