/**
 * Memory and CPU placement with real QEMU and the QEMU-direct backend (issue 12, task A3), on
 * the host's QEMU 7.2 and the lab chroot's QEMU 11.x: `<vcpu cpuset>` is the CPU affinity of the
 * whole QEMU process, every thread (vCPUs included) as libvirt pins it (sched_setaffinity before
 * exec). libvirt itself is the oracle: the same definition started by libvirt's daemon of each
 * lab gives its QEMU the same Cpus_allowed_list.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend, hostMemoryInfo } from "../../provider/backends/qemu/direct";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, labEnv, makeDirectState, removeDirectState, requireLab } from "../support/lab";

/** The Cpus_allowed_list of a process or thread (`/proc/PID[/task/TID]/status`). */
function cpusAllowed(statusDir: string): string {
  const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(path.join(statusDir, "status"), "utf8"));
  if (!m?.[1]) throw new Error(`no Cpus_allowed_list in ${statusDir}/status`);
  return m[1];
}

/** The affinity of every thread of `pid`, deduplicated. */
function threadAffinities(pid: number): string[] {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  return [...new Set(tasks.map((t) => cpusAllowed(`/proc/${pid}/task/${t}`)))];
}

/** The host CPU the tests pin to: the last online one (on a 1-CPU host, CPU 0). */
function lastCpu(): number {
  return os.cpus().length - 1;
}

const domainXml = (name: string, vcpu: string, emulator = "") =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory>${vcpu}
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${emulator}</devices></domain>`;

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct memory and CPU placement, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "memcpu"));
    });
    after(() => removeDirectState(uri, state));

    it("<vcpu cpuset> pins every QEMU thread, vCPUs included, to those host CPUs", async () => {
      const cpu = lastCpu();
      const xml = domainXml("pinned", `<vcpu placement='static' cpuset='${cpu}'>2</vcpu>`);
      const a = await checkAndCreate({ name: "pinned", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const pid = Number(fs.readFileSync(path.join(state, "pinned", "qemu.pid"), "utf8"));
      // the process is QEMU itself (taskset exec'd it), not a taskset left in between
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")).to.match(/qemu-system-x86_64/);
      expect(cpusAllowed(`/proc/${pid}`)).to.equal(`${cpu}`);
      expect(threadAffinities(pid)).to.deep.equal([`${cpu}`]);
      const vcpus = (await qmpOnce(path.join(state, "pinned", "qmp.sock"), "query-cpus-fast")) as {
        "thread-id": number;
      }[];
      expect(vcpus).to.have.length(2);
      for (const v of vcpus) expect(cpusAllowed(`/proc/${pid}/task/${v["thread-id"]}`)).to.equal(`${cpu}`);
      await impl.remove("pinned", a.outs);
    });

    it("without cpuset QEMU keeps the affinity it was started with (no pinning)", async () => {
      const a = await checkAndCreate({
        name: "free",
        xml: domainXml("free", "<vcpu>1</vcpu>"),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const pid = Number(fs.readFileSync(path.join(state, "free", "qemu.pid"), "utf8"));
      expect(cpusAllowed(`/proc/${pid}`)).to.equal(cpusAllowed("/proc/self"));
      await impl.remove("free", a.outs);
    });

    it("a cpuset of no host CPU fails to start, naming the affinity (as libvirt cannot set it either)", async () => {
      const xml = domainXml("nocpu", "<vcpu placement='static' cpuset='4000'>1</vcpu>");
      const c = await impl.check({}, { name: "nocpu", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(c.failures).to.deep.equal([]);
      let message = "";
      try {
        await impl.create(c.inputs);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).to.match(/taskset/);
      expect(message).to.match(/affinity|cpu/i);
      await new QemuDirectBackend(uri).undefine("nocpu").catch(() => undefined);
    });

    it("<memoryBacking> file, shared, preallocated, nosharepages, locked: QEMU's memdev says so, and no RAM file is left", async () => {
      const backing =
        "<memoryBacking><nosharepages/><locked/><source type='file'/><access mode='shared'/><allocation mode='immediate'/></memoryBacking>";
      const xml = domainXml("backed", `${backing}<vcpu>1</vcpu>`);
      const a = await checkAndCreate({ name: "backed", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const memdev = (await qmpOnce(path.join(state, "backed", "qmp.sock"), "query-memdev")) as Record<
        string,
        unknown
      >[];
      expect(memdev.map((m) => [m.id, m.size, m.share, m.prealloc, m.merge])).to.deep.equal([
        ["pc.ram", 67108864, true, true, false],
      ]);
      const pid = Number(fs.readFileSync(path.join(state, "backed", "qemu.pid"), "utf8"));
      // <locked/>: QEMU locked its memory (mlockall), VmLck counts the guest RAM
      const vmLckKiB = Number(/^VmLck:\s*(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
      expect(vmLckKiB).to.be.greaterThan(65536);
      // the RAM is a file QEMU made in the domain's directory and unlinked at once
      const maps = fs.readFileSync(`/proc/${pid}/maps`, "utf8");
      expect(maps).to.contain(path.join(state, "backed"));
      expect(maps).to.match(/\(deleted\)/);
      await impl.remove("backed", a.outs);
      expect(fs.readdirSync(state).filter((f) => !f.startsWith("."))).to.deep.equal([]);
    });

    it("NUMA cells with memAccess: one backend per cell, shared as each cell says; -m and -numa agree in the guest", async () => {
      const cpu =
        "<cpu><numa><cell id='0' cpus='0' memory='32' unit='MiB' memAccess='shared'/><cell id='1' cpus='1' memory='32' unit='MiB' memAccess='private'/></numa></cpu>";
      const xml = `<domain type='qemu'><name>cells</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>${cpu}<devices/></domain>`;
      const a = await checkAndCreate({ name: "cells", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const sock = path.join(state, "cells", "qmp.sock");
      const memdev = (await qmpOnce(sock, "query-memdev")) as Record<string, unknown>[];
      expect(memdev.map((m) => [m.id, m.size, m.share]).sort()).to.deep.equal([
        ["ram-node0", 33554432, true],
        ["ram-node1", 33554432, false],
      ]);
      const summary = (await qmpOnce(sock, "query-memory-size-summary")) as { "base-memory": number };
      expect(summary["base-memory"]).to.equal(67108864);
      await impl.remove("cells", a.outs);
    });

    it("<numatune> strict on a host node binds the guest RAM there (query-memdev), a node the host lacks is refused before QEMU starts", async () => {
      const xml = domainXml("bound", "<vcpu>1</vcpu><numatune><memory mode='strict' nodeset='0'/></numatune>");
      const a = await checkAndCreate({ name: "bound", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const memdev = (await qmpOnce(path.join(state, "bound", "qmp.sock"), "query-memdev")) as Record<
        string,
        unknown
      >[];
      expect(memdev.map((m) => [m.id, m["host-nodes"], m.policy])).to.deep.equal([["pc.ram", [0], "bind"]]);
      await impl.remove("bound", a.outs);
      const online = fs.readFileSync("/sys/devices/system/node/online", "utf8").trim();
      const xml2 = domainXml("nonode", "<vcpu>1</vcpu><numatune><memory mode='strict' nodeset='999'/></numatune>");
      let message = "";
      try {
        const c = await impl.check({}, { name: "nonode", xml: xml2, connection: { uri }, shutdownTimeoutSeconds: 0 });
        if (c.failures.length) message = JSON.stringify(c.failures);
        else await impl.create(c.inputs);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, `host nodes ${online}`).to.contain("NUMA node 999 is unavailable");
      expect(await new QemuDirectBackend(uri).exists("nonode")).to.equal(false);
    });

    it("<cpu><cache level='3' mode='emulate'> and <maxphysaddr mode='emulate' bits='42'> reach the vCPU (qom-get)", async () => {
      const xml = `<domain type='qemu'><name>cpuaddr</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>
        <cpu mode='custom'><model>qemu64</model><cache level='3' mode='emulate'/><maxphysaddr mode='emulate' bits='42'/></cpu>
        <devices/></domain>`;
      const a = await checkAndCreate({ name: "cpuaddr", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const sock = path.join(state, "cpuaddr", "qmp.sock");
      const [vcpu] = (await qmpOnce(sock, "query-cpus-fast")) as { "qom-path": string }[];
      const get = (property: string) => qmpOnce(sock, "qom-get", { path: vcpu!["qom-path"], property });
      expect(await get("phys-bits")).to.equal(42);
      expect(await get("l3-cache")).to.equal(true);
      await impl.remove("cpuaddr", a.outs);
    });

    it("<features><smm> with <tseg> on q35 reach the machine (TCG), <pvspinlock> the KVM vCPU (qom-get)", async () => {
      const xml = `<domain type='qemu'><name>smm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='q35'>hvm</type></os>
        <features><smm state='on'><tseg unit='MiB'>48</tseg></smm></features><devices/></domain>`;
      const a = await checkAndCreate({ name: "smm", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const sock = path.join(state, "smm", "qmp.sock");
      expect(await qmpOnce(sock, "qom-get", { path: "/machine", property: "smm" })).to.equal("on");
      expect(await qmpOnce(sock, "qom-get", { path: "/machine/q35/mch", property: "extended-tseg-mbytes" })).to.equal(
        48,
      );
      await impl.remove("smm", a.outs);
      // KVM's paravirtual unhalt exists only under KVM (TCG filters it out, as for libvirt)
      const kvm = `<domain type='kvm'><name>pvlock</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><features><pvspinlock state='on'/></features><devices/></domain>`;
      const b = await checkAndCreate({ name: "pvlock", xml: kvm, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const sock2 = path.join(state, "pvlock", "qmp.sock");
      const [vcpu] = (await qmpOnce(sock2, "query-cpus-fast")) as { "qom-path": string }[];
      expect(await qmpOnce(sock2, "qom-get", { path: vcpu!["qom-path"], property: "kvm-pv-unhalt" })).to.equal(true);
      await impl.remove("pvlock", b.outs);
    });

    it("<iothreads> with <iothreadids>: QEMU runs those iothreads (query-iothreads)", async () => {
      const xml = domainXml(
        "iothr",
        "<vcpu>1</vcpu><iothreads>3</iothreads><iothreadids><iothread id='5'/></iothreadids>",
      );
      const a = await checkAndCreate({ name: "iothr", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const threads = (await qmpOnce(path.join(state, "iothr", "qmp.sock"), "query-iothreads")) as { id: string }[];
      expect(threads.map((t) => t.id).sort()).to.deep.equal(["iothread1", "iothread2", "iothread5"]);
      await impl.remove("iothr", a.outs);
    });

    it("<currentMemory> below <memory>: the backend sets the balloon target over QMP after start; no balloon is refused", async () => {
      const xml = domainXml("ballooned", "<currentMemory unit='MiB'>48</currentMemory><vcpu>1</vcpu>");
      // start fails if QEMU refuses the QMP balloon command (no balloon device, a bad value)
      const a = await checkAndCreate({ name: "ballooned", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const info = (await qmpOnce(path.join(state, "ballooned", "qmp.sock"), "query-balloon")) as { actual: number };
      // without a guest driver the guest gives nothing back: actual stays the full 64 MiB
      expect(info.actual).to.equal(67108864);
      await impl.remove("ballooned", a.outs);
      const none = domainXml("noballoon", "<currentMemory unit='MiB'>48</currentMemory><vcpu>1</vcpu>").replace(
        "<devices>",
        "<devices><memballoon model='none'/>",
      );
      const c = await impl.check({}, { name: "noballoon", xml: none, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(JSON.stringify(c.failures)).to.contain("/domain/currentMemory");
    });

    it("<hugepages> follows this host's hugetlbfs mounts: none for the size is refused at check, naming it", async () => {
      const xml = domainXml("huge", "<memoryBacking><hugepages/></memoryBacking><vcpu>1</vcpu>");
      const host = hostMemoryInfo();
      const c = await impl.check({}, { name: "huge", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const size = host.hugetlbfs?.defaultSizeKiB;
      const mount = host.hugetlbfs?.mounts.find((m) => m.sizeKiB === size);
      if (!mount) {
        expect(JSON.stringify(c.failures)).to.contain(`Unable to find any usable hugetlbfs mount for ${size} KiB`);
        return;
      }
      // a host with a mount: QEMU is given it (it starts, or says it has no free huge pages there)
      expect(c.failures).to.deep.equal([]);
      try {
        const r = await impl.create(c.inputs);
        const memdev = (await qmpOnce(path.join(state, "huge", "qmp.sock"), "query-memdev")) as Record<
          string,
          unknown
        >[];
        expect(memdev[0]).to.deep.include({ id: "pc.ram", prealloc: true });
        await impl.remove("huge", r.outs);
      } catch (e) {
        expect((e as Error).message).to.contain(mount.path);
      }
    });

    it(`libvirt (${which} lab) gives its QEMU the same affinity for the same <vcpu cpuset>`, async () => {
      const lab = await requireLab(which);
      const cpu = lastCpu();
      const name = `lvd-memcpu-oracle-${which}`;
      const file = path.join(state, `${name}.xml`);
      fs.writeFileSync(
        file,
        domainXml(
          name,
          `<vcpu placement='static' cpuset='${cpu}'>2</vcpu>`,
          "<emulator>/usr/bin/qemu-system-x86_64</emulator>",
        ),
      );
      await runVirsh(lab.uri, ["destroy", name]).catch(() => undefined);
      await runVirsh(lab.uri, ["create", file]);
      try {
        const root = which === "new" ? (labEnv().LAB_CHROOT ?? "") : "";
        const pid = Number(fs.readFileSync(`${root}/run/libvirt/qemu/${name}.pid`, "utf8"));
        expect(cpusAllowed(`/proc/${pid}`)).to.equal(`${cpu}`);
        expect(threadAffinities(pid)).to.deep.equal([`${cpu}`]);
      } finally {
        await runVirsh(lab.uri, ["destroy", name]);
      }
    });
  });
}
