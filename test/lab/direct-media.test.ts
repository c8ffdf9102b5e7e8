/**
 * Audio backends, sound cards and VNC options with the QEMU-direct backend and real QEMU (the
 * host's 7.2 and the lab chroot's 11.x), no libvirt: QEMU has every sound device the definition
 * asks for, each on the audio backend it names (QMP qom-get), the PC speaker on its backend, and
 * VNC on the unix socket of `<listen type='socket'>`, sharing as written (QMP query-vnc).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct media (audio, sound, VNC options), QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "media"));
    });
    after(() => removeDirectState(uri, state));

    it("sound cards on their audio backends, the PC speaker, VNC on a unix socket", async () => {
      const sock = path.join(state, "vnc.sock");
      const wav = path.join(state, "out.wav");
      const xml = `<domain type='qemu'><name>media</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <graphics type='vnc' sharePolicy='force-shared'><listen type='socket' socket='${sock}'/><audio id='2'/></graphics>
        <video><model type='vga'/></video>
        <sound model='pcspk'/>
        <sound model='ac97'><audio id='2'/></sound>
        <sound model='es1370'/>
        <sound model='ich9'><codec type='micro'/><codec type='duplex'/></sound>
        <sound model='sb16'/>
        <sound model='usb'/>
        <audio id='1' type='none'><output fixedSettings='yes' voices='2'><settings frequency='22050' channels='2' format='s16'/></output></audio>
        <audio id='2' type='file' path='${wav}'/>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "media", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "media", "qmp.sock");
      const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
      const peripherals = ((await qmpOnce(qmp, "qom-list", { path: "/machine/peripheral" })) as { name: string }[]).map(
        (x) => x.name,
      );
      expect(peripherals).to.include.members([
        "sound1",
        "sound2",
        "sound3",
        "sound3-codec0",
        "sound3-codec1",
        "sound4",
        "sound5",
      ]);
      expect(await get("/machine/peripheral/sound1", "type")).to.equal("AC97");
      expect(await get("/machine/peripheral/sound1", "audiodev")).to.equal("audio2");
      expect(await get("/machine/peripheral/sound2", "type")).to.equal("ES1370");
      expect(await get("/machine/peripheral/sound2", "audiodev")).to.equal("audio1");
      expect(await get("/machine/peripheral/sound3", "type")).to.equal("ich9-intel-hda");
      expect(await get("/machine/peripheral/sound3-codec0", "type")).to.equal("hda-micro");
      expect(await get("/machine/peripheral/sound3-codec1", "type")).to.equal("hda-duplex");
      expect(await get("/machine/peripheral/sound4", "type")).to.equal("sb16");
      expect(await get("/machine/peripheral/sound5", "type")).to.equal("usb-audio");
      expect(await get("/machine", "pcspk-audiodev")).to.equal("audio1");
      const vnc = (await qmpOnce(qmp, "query-vnc")) as { enabled: boolean; family?: string; host?: string };
      expect(vnc.enabled).to.equal(true);
      expect(vnc.family).to.equal("unix");
      expect(fs.statSync(sock).isSocket()).to.equal(true);
      if (which === "new") {
        const devs = (await qmpOnce(qmp, "query-audiodevs")) as { id: string; driver: string }[];
        expect(devs.map((d) => `${d.id}:${d.driver}`).sort()).to.deep.equal(["audio1:none", "audio2:wav"]);
      }
      await impl.remove("media", a.outs);
    });

    // the lab's QEMU 11.x has no loadable SPICE module (qemu-system-modules-spice): 7.2 only
    if (which === "host")
      it("SPICE on a unix socket without a password (auth none), its audio backend and a QXL VGA", async () => {
        const sock = path.join(state, "spice.sock");
        const xml = `<domain type='qemu'><name>spice</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
          <graphics type='spice'><listen type='socket' socket='${sock}'/><image compression='off'/></graphics>
          <video><model type='qxl'/></video><sound model='ich6'/></devices></domain>`;
        const a = await checkAndCreate({ name: "spice", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
        const qmp = path.join(state, "spice", "qmp.sock");
        const spice = (await qmpOnce(qmp, "query-spice")) as { enabled: boolean; auth: string; host: string };
        expect(spice).to.include({ enabled: true, auth: "none", host: sock });
        expect(await qmpOnce(qmp, "qom-get", { path: "/machine/peripheral/video0", property: "type" })).to.equal(
          "qxl-vga",
        );
        expect(
          await qmpOnce(qmp, "qom-get", { path: "/machine/peripheral/sound0-codec0", property: "audiodev" }),
        ).to.equal("audio1");
        await impl.remove("spice", a.outs);
      });
  });
}
