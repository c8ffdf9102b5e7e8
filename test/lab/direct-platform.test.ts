/**
 * The platform family with the QEMU-direct backend and real QEMU (the host's 7.2 and the lab
 * chroot's 11.x), no libvirt: QEMU has what provider/qemu/platform.ts built, read back over QMP
 * (qom-get): the 64-bit PCI hole of the PC and Q35 host bridges, an RNG on the builtin backend
 * with its rate and a virtio option, the balloon's virtio option, the vmport, PMU, PS/2 (i8042)
 * and split I/O APIC features with the IOMMU's interrupt remapping over it, the vmcoreinfo
 * device, the guest clock started at an absolute date, `<cpu check='full'>` enforced by QEMU, and the
 * `<cputune>` pins on QEMU's threads (/proc/PID/task/TID/status).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

/** The Cpus_allowed_list of a process or thread (`/proc/PID[/task/TID]/status`). */
function cpusAllowed(statusDir: string): string {
  const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(path.join(statusDir, "status"), "utf8"));
  if (!m?.[1]) throw new Error(`no Cpus_allowed_list in ${statusDir}/status`);
  return m[1];
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct platform (features, pcihole64, rng, balloon, clock), QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "platform"));
    });
    after(() => removeDirectState(uri, state));

    it("PC: pcihole64, builtin RNG with rate and packed, balloon options and stats period, vmport and PMU off, vmcoreinfo, absolute clock", async () => {
      const xml = `<domain type='qemu'><name>platform</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type><bios rebootTimeout='1000'/></os>
        <features><acpi/><vmport state='off'/><pmu state='off'/><vmcoreinfo/></features>
        <clock offset='absolute' start='1234567890'/>
        <devices>
        <controller type='pci' index='0' model='pci-root'><pcihole64 unit='GiB'>4</pcihole64></controller>
        <rng model='virtio'><backend model='builtin'/><rate bytes='2048' period='500'/><driver packed='on'/></rng>
        <memballoon model='virtio' autodeflate='on' freePageReporting='on'><stats period='10'/><driver packed='on'/></memballoon>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "platform", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "platform", "qmp.sock");
      const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
      expect(await get("/machine/i440fx", "pci-hole64-size")).to.equal(4 * 1024 ** 3);
      expect(await get("/machine/peripheral/rng0", "max-bytes")).to.equal(2048);
      expect(await get("/machine/peripheral/rng0", "period")).to.equal(500);
      expect(await get("/machine/peripheral/rng0", "packed")).to.equal(true);
      expect(await get("/machine/peripheral/rng0", "rng")).to.equal("/objects/objrng0");
      expect(await get("/objects/objrng0", "type")).to.equal("rng-builtin");
      expect(await get("/machine/peripheral/balloon0", "packed")).to.equal(true);
      expect(await get("/machine/peripheral/balloon0", "deflate-on-oom")).to.equal(true);
      expect(await get("/machine/peripheral/balloon0", "free-page-reporting")).to.equal(true);
      // <stats period>: set over QMP after start, as libvirt does
      expect(await get("/machine/peripheral/balloon0", "guest-stats-polling-interval")).to.equal(10);
      expect(await get("/machine", "vmport")).to.equal("off");
      const [cpu] = (await qmpOnce(qmp, "query-cpus-fast")) as { "qom-path": string }[];
      expect(await get(cpu!["qom-path"], "pmu")).to.equal(false);
      const anon = (await qmpOnce(qmp, "qom-list", { path: "/machine/peripheral-anon" })) as { name: string }[];
      const types = await Promise.all(
        anon.filter((x) => x.name.startsWith("device[")).map((x) => get(`/machine/peripheral-anon/${x.name}`, "type")),
      );
      expect(types).to.include("vmcoreinfo");
      // the RTC started at 2009-02-13T23:31:30Z (start='1234567890') and runs from there
      // QEMU 7.2 links the PC's RTC as /machine/rtc_state; later ones make it the PIIX3's child "rtc"
      const rtc = which === "host" ? "/machine/rtc_state" : "rtc";
      const date = (await get(rtc, "date")) as { tm_year: number; tm_mon: number; tm_mday: number };
      expect(date).to.include({ tm_year: 109, tm_mon: 1 });
      expect(date.tm_mday).to.be.within(13, 14);
      await impl.remove("platform", a.outs);
    });

    it("Q35: pcihole64 of pcie-root, PS/2 off (i8042), split I/O APIC with the IOMMU's interrupt remapping", async () => {
      const xml = `<domain type='qemu'><name>platform-q35</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='q35'>hvm</type></os>
        <features><acpi/><ps2 state='off'/><ioapic driver='qemu'/></features>
        <devices>
        <controller type='pci' index='0' model='pcie-root'><pcihole64 unit='MiB'>2048</pcihole64></controller>
        <memballoon model='none'/>
        <iommu model='intel'><driver intremap='on'/></iommu>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "platform-q35", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "platform-q35", "qmp.sock");
      const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
      expect(await get("/machine/q35", "pci-hole64-size")).to.equal(2 * 1024 ** 3);
      expect(await get("/machine", "i8042")).to.equal(false);
      expect(await get("/machine/peripheral/iommu0", "intremap")).to.equal("on");
      await impl.remove("platform-q35", a.outs);
    });

    it("<cputune>: emulatorpin is QEMU's affinity from exec, vcpupin and iothreadpin are set on the threads after start", async () => {
      // CPU 0 for the emulator, the last online CPU for the pins (on a 1-CPU host both are 0)
      const last = os.cpus().length - 1;
      const all = last === 0 ? "0" : `0-${last}`;
      const xml = `<domain type='qemu'><name>cputune</name><memory unit='MiB'>64</memory><vcpu>2</vcpu><iothreads>1</iothreads>
        <cputune><vcpupin vcpu='0' cpuset='${last}'/><emulatorpin cpuset='0'/><iothreadpin iothread='1' cpuset='${last}'/></cputune>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><memballoon model='none'/></devices></domain>`;
      const a = await checkAndCreate({ name: "cputune", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const pid = Number(fs.readFileSync(path.join(state, "cputune", "qemu.pid"), "utf8"));
      const qmp = path.join(state, "cputune", "qmp.sock");
      expect(cpusAllowed(`/proc/${pid}`)).to.equal("0");
      const vcpus = (await qmpOnce(qmp, "query-cpus-fast")) as { "cpu-index": number; "thread-id": number }[];
      const tid = (i: number) => vcpus.find((v) => v["cpu-index"] === i)!["thread-id"];
      expect(cpusAllowed(`/proc/${pid}/task/${tid(0)}`)).to.equal(`${last}`);
      // a vCPU without a pin runs on every online host CPU, not on the emulator's (libvirt's qemuProcessSetupPid)
      expect(cpusAllowed(`/proc/${pid}/task/${tid(1)}`)).to.equal(all);
      const [io] = (await qmpOnce(qmp, "query-iothreads")) as { id: string; "thread-id": number }[];
      expect(io!.id).to.equal("iothread1");
      expect(cpusAllowed(`/proc/${pid}/task/${io!["thread-id"]}`)).to.equal(`${last}`);
      await impl.remove("cputune", a.outs);
    });

    it("<cpu check='full'>: a CPU model TCG provides in full starts, one it cannot is refused by QEMU at start", async () => {
      const xml = (
        name: string,
        model: string,
      ) => `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>
        <cpu mode='custom' match='exact' check='full'><model fallback='forbid'>${model}</model></cpu>
        <devices><memballoon model='none'/></devices></domain>`;
      const a = await checkAndCreate({
        name: "check-ok",
        xml: xml("check-ok", "core2duo"),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      expect(a.outs.state).to.equal("running");
      await impl.remove("check-ok", a.outs);
      const c = await impl.check(
        {},
        { name: "check-no", xml: xml("check-no", "Haswell"), connection: { uri }, shutdownTimeoutSeconds: 0 },
      );
      expect(c.failures).to.deep.equal([]);
      let err: unknown;
      await impl.create(c.inputs).catch((e: unknown) => (err = e));
      expect(String((err as Error | undefined)?.message)).to.match(/TCG doesn't support requested feature/);
    });

    it("<feature policy='optional'>: on where TCG provides it (popcnt), dropped where it does not (pcid); the guest starts", async () => {
      const xml = `<domain type='qemu'><name>optional</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>
        <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model>
        <feature policy='optional' name='popcnt'/><feature policy='optional' name='pcid'/><feature policy='optional' name='osxsave'/></cpu>
        <devices><memballoon model='none'/></devices></domain>`;
      const a = await checkAndCreate({ name: "optional", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "optional", "qmp.sock");
      const [cpu] = (await qmpOnce(qmp, "query-cpus-fast")) as { "qom-path": string }[];
      const get = (property: string) => qmpOnce(qmp, "qom-get", { path: cpu!["qom-path"], property });
      expect(await get("popcnt")).to.equal(true);
      expect(await get("pcid")).to.equal(false);
      await impl.remove("optional", a.outs);
    });
  });
}
