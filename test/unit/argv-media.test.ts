/**
 * Audio backends, sound cards, graphics other than VNC and video acceleration on the QEMU command
 * line, as libvirt writes them (provider/qemu/media.ts; the expected values are libvirt 11.3's
 * tests/qemuxmlconfdata .args files), and the libvirt rules the builder checks too.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { argv, refusal, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (devices: string, machine = "pc") =>
  DomainDef.parse(
    `<domain type='qemu'><name>m</name><uuid>${U}</uuid><memory unit='KiB'>219100</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${devices}<memballoon model='none'/></devices></domain>`,
  );

/** The -device values, without the PIIX3 USB controller libvirt adds to every PC domain. */
const devices = (d: DomainDef) =>
  values(argv(d), "-device")
    .map((v) => JSON.parse(v) as Record<string, unknown>)
    .filter((x) => x.driver !== "piix3-usb-uhci");

const CIRRUS = "<video><model type='cirrus'/></video>";

describe("QEMU command line: audio backends (<audio>)", () => {
  it("every type libvirt knows is an -audiodev with its input and output settings (audio-alsa-full, audio-oss-full)", () => {
    const dirs =
      "<input mixingEngine='yes' fixedSettings='yes' voices='1' bufferLength='100' dev='/dev/dsp0'><settings frequency='44100' channels='2' format='s16'/></input>" +
      "<output mixingEngine='yes' fixedSettings='yes' voices='2' bufferLength='200' dev='/dev/dsp1'><settings frequency='22050' channels='4' format='f32'/></output>";
    expect(values(argv(doc(`<audio id='1' type='alsa'>${dirs}</audio>`)), "-audiodev")).to.deep.equal([
      JSON.stringify({
        id: "audio1",
        driver: "alsa",
        in: {
          "mixing-engine": true,
          "fixed-settings": true,
          voices: 1,
          "buffer-length": 100,
          frequency: 44100,
          channels: 2,
          format: "s16",
          dev: "/dev/dsp0",
        },
        out: {
          "mixing-engine": true,
          "fixed-settings": true,
          voices: 2,
          "buffer-length": 200,
          frequency: 22050,
          channels: 4,
          format: "f32",
          dev: "/dev/dsp1",
        },
      }),
    ]);
    const oss = JSON.parse(
      values(
        argv(
          doc(
            "<audio id='1' type='oss' tryMMap='yes' exclusive='yes' dspPolicy='3' timerPeriod='50'><input bufferCount='50' tryPoll='yes'/></audio>",
          ),
        ),
        "-audiodev",
      )[0]!,
    ) as Record<string, unknown>;
    expect(oss).to.deep.equal({
      id: "audio1",
      driver: "oss",
      "timer-period": 50,
      "try-mmap": true,
      exclusive: true,
      "dsp-policy": 3,
      in: { "buffer-count": 50, "try-poll": true },
    });
  });

  it("pulseaudio is pa, file is wav; SDL's driver and PipeWire's runtimeDir go to the environment", () => {
    const pa = argv(
      doc("<audio id='1' type='pulseaudio' serverName='acme.example.org'/><audio id='2' type='file' path='a.wav'/>"),
    );
    expect(values(pa, "-audiodev")).to.deep.equal([
      '{"id":"audio1","driver":"pa","server":"acme.example.org"}',
      '{"id":"audio2","driver":"wav","path":"a.wav"}',
    ]);
    const cmd = buildQemuArgv(
      doc("<audio id='1' type='sdl' driver='pulseaudio'/><audio id='2' type='pipewire' runtimeDir='/run/user/1000'/>"),
    );
    expect(cmd.env).to.include({ SDL_AUDIODRIVER: "pulseaudio", PIPEWIRE_RUNTIME_DIR: "/run/user/1000" });
  });

  it("without <audio>, the backend libvirt adds: none (no graphics, VNC), spice (SPICE), nothing for SDL alone", () => {
    expect(values(argv(doc("")), "-audiodev")).to.deep.equal(['{"id":"audio1","driver":"none"}']);
    expect(values(argv(doc(`<graphics type='spice'/>${CIRRUS}`)), "-audiodev")).to.deep.equal([
      '{"id":"audio1","driver":"spice"}',
    ]);
    expect(values(argv(doc(`<graphics type='sdl'/>${CIRRUS}`)), "-audiodev")).to.deep.equal([]);
    expect(values(argv(doc(`<graphics type='vnc' port='5901' autoport='no'/>${CIRRUS}`)), "-vnc")).to.deep.equal([
      "127.0.0.1:1,audiodev=audio1",
    ]);
  });

  it("refuses what libvirt refuses or the builder does not know: an unknown type or attribute, a duplicate id", () => {
    expect(refusal(doc("<audio id='1' type='esd'/>")).path).to.equal("/domain/devices/audio[1]/@type");
    expect(refusal(doc("<audio id='1' type='alsa' serverName='x'/>")).path).to.equal(
      "/domain/devices/audio[1]/@serverName",
    );
    expect(refusal(doc("<audio id='1' type='none'><input dev='/dev/dsp'/></audio>")).path).to.equal(
      "/domain/devices/audio[1]/input/@dev",
    );
    expect(refusal(doc("<audio id='1' type='none'/><audio id='1' type='alsa'/>")).path).to.equal(
      "/domain/devices/audio[2]/@id",
    );
    expect(
      refusal(doc("<audio id='1' type='none'><output fixedSettings='yes'><settings format='s24'/></output></audio>"))
        .path,
    ).to.equal("/domain/devices/audio[1]/output/settings/@format");
  });
});

describe("QEMU command line: libvirt's audio rules, in libvirt's words (checked against libvirt 12.9)", () => {
  const cases: [string, string, string][] = [
    [
      "<audio id='1' type='none'><output><settings frequency='44100'/></output></audio>",
      "audio settings specified without fixed settings flag",
      "/domain/devices/audio[1]/output/settings",
    ],
    [
      "<audio id='1' type='none'><output mixingEngine='no' fixedSettings='yes'/></audio>",
      "fixed audio settings requires mixing engine",
      "/domain/devices/audio[1]/output/@mixingEngine",
    ],
    [
      "<audio id='1' type='none'/><audio id='1' type='alsa'/>",
      "audio ID 1 is used multiple times",
      "/domain/devices/audio[2]/@id",
    ],
    [
      "<sound model='ac97'><audio id='3'/></sound><audio id='1' type='none'/>",
      "no audio device with ID 3",
      "/domain/devices/sound[1]/audio/@id",
    ],
    [
      "<audio id='1' type='spice'/>",
      "Spice audio is not supported without spice graphics",
      "/domain/devices/audio[1]/@type",
    ],
    [
      "<graphics type='dbus' address='unix:path=/tmp/x' p2p='yes'/>",
      "D-Bus p2p with an address is not supported",
      "/domain/devices/graphics[1]/@address",
    ],
  ];
  for (const [xml, message, path] of cases)
    it(`${message}: ${xml}`, () => {
      const e = refusal(doc(xml));
      expect(e.message).to.contain(message);
      expect(e.path).to.equal(path);
    });
  it("zero voices, buffer length, streams or id are refused (libvirt: Zero is not permitted)", () => {
    expect(refusal(doc("<audio id='1' type='none'><output voices='0'/></audio>")).path).to.equal(
      "/domain/devices/audio[1]/output/@voices",
    );
    expect(refusal(doc("<audio id='1' type='none'><input bufferLength='0'/></audio>")).path).to.equal(
      "/domain/devices/audio[1]/input/@bufferLength",
    );
    expect(refusal(doc("<sound model='virtio' streams='0'/>")).path).to.equal("/domain/devices/sound[1]/@streams");
    expect(refusal(doc("<audio id='0' type='none'/>")).path).to.equal("/domain/devices/audio[1]/@id");
  });
});

describe("QEMU command line: sound cards (<sound>)", () => {
  it("each model as libvirt writes it, HDA codecs, the PC speaker on -machine, PCI slots in order (sound-device)", () => {
    const d = doc(
      "<sound model='pcspk'/><sound model='es1370'/><sound model='sb16'/><sound model='ac97'/><sound model='ich6'/>" +
        "<sound model='ich9'><codec type='micro'/><codec type='output'/></sound><sound model='usb' multichannel='yes'/>" +
        "<sound model='virtio' streams='4'><driver iommu='on' packed='on'/></sound>",
    );
    const a = argv(d);
    expect(values(a, "-machine")[0]).to.contain(",pcspk-audiodev=audio1,");
    expect(devices(d)).to.deep.equal([
      { driver: "ES1370", id: "sound1", audiodev: "audio1", bus: "pci.0", addr: "0x2" },
      { driver: "sb16", id: "sound2", audiodev: "audio1" },
      { driver: "AC97", id: "sound3", audiodev: "audio1", bus: "pci.0", addr: "0x3" },
      { driver: "intel-hda", id: "sound4", bus: "pci.0", addr: "0x4" },
      { driver: "hda-duplex", id: "sound4-codec0", bus: "sound4.0", cad: 0, audiodev: "audio1" },
      { driver: "ich9-intel-hda", id: "sound5", bus: "pci.0", addr: "0x5" },
      { driver: "hda-micro", id: "sound5-codec0", bus: "sound5.0", cad: 0, audiodev: "audio1" },
      { driver: "hda-output", id: "sound5-codec1", bus: "sound5.0", cad: 1, audiodev: "audio1" },
      { driver: "usb-audio", id: "sound6", audiodev: "audio1", multi: true, bus: "usb.0", port: "1" },
      {
        driver: "virtio-sound-pci",
        iommu_platform: true,
        packed: true,
        id: "sound7",
        audiodev: "audio1",
        streams: 4,
        bus: "pci.0",
        addr: "0x6",
      },
    ]);
  });

  it("a sound card uses its <audio id=> backend (audio-many-backends); an id no <audio> has is refused", () => {
    const d = doc(
      "<sound model='ac97'/><sound model='es1370'><audio id='2'/></sound><audio id='1' type='none'/><audio id='2' type='alsa'/>",
    );
    expect(devices(d).map((x) => x.audiodev)).to.deep.equal(["audio1", "audio2"]);
    expect(refusal(doc("<sound model='ac97'><audio id='3'/></sound><audio id='1' type='none'/>")).path).to.equal(
      "/domain/devices/sound[1]/audio/@id",
    );
    expect(refusal(doc("<sound model='ich7'/>")).path).to.equal("/domain/devices/sound[1]/@model");
    expect(refusal(doc("<sound model='ac97'><codec type='duplex'/></sound>")).path).to.equal(
      "/domain/devices/sound[1]/codec",
    );
  });
});

describe("QEMU command line: USB sound cards and USB inputs share the root hub", () => {
  it("a USB sound card takes its port before the USB inputs (libvirt's order); a written port is kept", () => {
    const ports = (x: string) =>
      devices(doc(x))
        .filter((d) => d.bus === "usb.0")
        .map((d) => `${String(d.driver)}:${String(d.port)}`);
    expect(ports("<input type='tablet' bus='usb'/><sound model='usb'/>")).to.deep.equal([
      "usb-audio:1",
      "usb-tablet:2",
    ]);
    expect(
      ports("<input type='tablet' bus='usb'/><sound model='usb'><address type='usb' bus='0' port='1'/></sound>"),
    ).to.deep.equal(["usb-audio:1", "usb-tablet:2"]);
  });
});

describe("QEMU command line: SPICE, SDL, egl-headless and D-Bus graphics", () => {
  it("SPICE with ports, TLS, channels, compression, clipboard, file transfer (graphics-spice)", () => {
    const g =
      "<graphics type='spice' port='5903' tlsPort='5904' autoport='no' listen='127.0.0.1' defaultMode='secure'>" +
      "<listen type='address' address='127.0.0.1'/><channel name='main' mode='secure'/><channel name='inputs' mode='insecure'/>" +
      "<image compression='auto_glz'/><jpeg compression='auto'/><zlib compression='auto'/><playback compression='on'/>" +
      "<streaming mode='filter'/><clipboard copypaste='no'/><filetransfer enable='no'/></graphics>";
    expect(values(argv(doc(g + CIRRUS)), "-spice")).to.deep.equal([
      "port=5903,tls-port=5904,addr=127.0.0.1,disable-ticketing=on,x509-dir=/etc/pki/libvirt-spice,tls-channel=default,tls-channel=main,plaintext-channel=inputs,image-compression=auto_glz,jpeg-wan-compression=auto,zlib-glz-wan-compression=auto,playback-compression=on,streaming-video=filter,disable-copy-paste=on,disable-agent-file-xfer=on,seamless-migration=on",
    ]);
  });

  it("SPICE on a socket, with no listener (port=0), with OpenGL; an autoport TLS port is refused (libvirt's qemu.conf)", () => {
    const spice = (g: string) => values(argv(doc(g + CIRRUS)), "-spice");
    expect(spice("<graphics type='spice'><listen type='socket' socket='/tmp/spice.sock'/></graphics>")).to.deep.equal([
      "unix=on,addr=/tmp/spice.sock,disable-ticketing=on,seamless-migration=on",
    ]);
    expect(spice("<graphics type='spice' autoport='no'/>")).to.deep.equal([
      "port=0,disable-ticketing=on,seamless-migration=on",
    ]);
    expect(
      spice("<graphics type='spice' autoport='no'><gl enable='yes' rendernode='/dev/dri/foo'/></graphics>"),
    ).to.deep.equal(["port=0,disable-ticketing=on,gl=on,rendernode=/dev/dri/foo,seamless-migration=on"]);
    // autoport='yes' takes a free port (test/unit/argv-input-video.test.ts); a TLS port with it is libvirt's qemu.conf
    expect(refusal(doc(`<graphics type='spice' autoport='yes' tlsPort='5902'/>${CIRRUS}`)).path).to.equal(
      "/domain/devices/graphics[1]/@tlsPort",
    );
    expect(refusal(doc(`<graphics type='spice' port='5901' defaultMode='secure'/>${CIRRUS}`)).path).to.equal(
      "/domain/devices/graphics[1]/@defaultMode",
    );
  });

  it("SDL (its X display in the environment), egl-headless, D-Bus with an address or peer to peer", () => {
    const sdl = buildQemuArgv(
      doc(`<graphics type='sdl' display=':0.1' xauth='/root/.Xauthority' fullscreen='yes'/>${CIRRUS}`),
    );
    expect(sdl.argv).to.include("-full-screen");
    expect(values(sdl.argv, "-display")).to.deep.equal(["sdl"]);
    expect(sdl.env).to.include({ DISPLAY: ":0.1", XAUTHORITY: "/root/.Xauthority" });
    expect(
      values(argv(doc("<graphics type='egl-headless'><gl rendernode='/dev/dri/foo'/></graphics>")), "-display"),
    ).to.deep.equal(["egl-headless,rendernode=/dev/dri/foo"]);
    expect(
      values(
        argv(
          doc(
            "<graphics type='dbus' address='unix:path=/tmp/foo'><gl enable='yes' rendernode='/dev/dri/foo'/></graphics>",
          ),
        ),
        "-display",
      ),
    ).to.deep.equal(["dbus,addr=unix:path=/tmp/foo,gl=on,rendernode=/dev/dri/foo"]);
    expect(
      values(
        argv(doc("<graphics type='dbus' p2p='yes'><audio id='1'/></graphics><audio id='1' type='dbus'/>")),
        "-display",
      ),
    ).to.deep.equal(["dbus,p2p=on,audiodev=audio1"]);
    expect(refusal(doc("<graphics type='dbus'/>")).path).to.equal("/domain/devices/graphics[1]");
  });

  it("libvirt's rules: egl-headless only beside VNC or SPICE, one OpenGL display", () => {
    const e = refusal(doc(`<graphics type='sdl'/><graphics type='egl-headless'/>${CIRRUS}`));
    expect(e.message).to.contain("graphics type 'egl-headless' is only supported with one of: 'vnc', 'spice'");
    const gl = refusal(
      doc(`<graphics type='spice' autoport='no'><gl enable='yes'/></graphics><graphics type='egl-headless'/>${CIRRUS}`),
    );
    expect(gl.message).to.contain("multiple OpenGL displays are not supported by QEMU");
  });
});

describe("QEMU command line: VNC options and video acceleration", () => {
  it("VNC on a socket, with no listener, share policy, power control, WebSocket", () => {
    const vnc = (g: string) => values(argv(doc(g + CIRRUS)), "-vnc");
    expect(vnc("<graphics type='vnc'><listen type='socket' socket='/tmp/vnc.sock'/></graphics>")).to.deep.equal([
      "vnc=unix:/tmp/vnc.sock,audiodev=audio1",
    ]);
    expect(vnc("<graphics type='vnc'><listen type='none'/></graphics>")).to.deep.equal(["none,audiodev=audio1"]);
    expect(
      vnc(
        "<graphics type='vnc' port='65530' autoport='no' listen='::' sharePolicy='allow-exclusive' powerControl='yes'/>",
      ),
    ).to.deep.equal(["[::]:59630,share=allow-exclusive,power-control=on,audiodev=audio1"]);
    expect(vnc("<graphics type='vnc' port='5900' autoport='no' websocket='5700' listen='127.0.0.1'/>")).to.deep.equal([
      "127.0.0.1:0,websocket=5700,audiodev=audio1",
    ]);
    // a socket without a path is made in the domain's run directory (test/unit/argv-input-video.test.ts)
    expect(vnc("<graphics type='vnc'><listen type='socket'/></graphics>")).to.deep.equal([
      "vnc=unix:/run/libvirt-domain/m/vnc.sock,audiodev=audio1",
    ]);
  });

  it("3D acceleration is virtio-vga-gl / virtio-gpu-gl-pci, blob and resolution are passed (video-virtio-vga-gpu-gl)", () => {
    const d = doc(
      "<video><model type='virtio' heads='1' primary='yes' blob='off'><acceleration accel3d='yes'/></model></video>" +
        "<video><model type='virtio' heads='1' primary='no'><acceleration accel3d='yes'/></model></video>" +
        "<video><model type='qxl'><resolution x='1280' y='720'/></model></video>",
    );
    const v = devices(d);
    expect(v[0]).to.include({ driver: "virtio-vga-gl", blob: false, max_outputs: 1 });
    expect(v[1]).to.include({ driver: "virtio-gpu-gl-pci" });
    expect(v[2]).to.include({ driver: "qxl", xres: 1280, yres: 720 });
    // several heads on a virtio video (libvirt 12.9: max_outputs)
    expect(devices(doc("<video><model type='virtio' heads='2'/></video>"))[0]).to.include({
      driver: "virtio-vga",
      max_outputs: 2,
    });
    expect(refusal(doc("<video><model type='vga'><acceleration accel3d='yes'/></model></video>")).path).to.equal(
      "/domain/devices/video[1]/model/acceleration/@accel3d",
    );
    expect(refusal(doc("<video><driver name='vhostuser'/><model type='virtio'/></video>")).path).to.equal(
      "/domain/devices/video[1]/driver/@name",
    );
  });

  it("graphics without <video>: the Cirrus VGA libvirt adds on the PC machine; refused on q35", () => {
    expect(devices(doc("<graphics type='egl-headless'/>"))[0]).to.deep.equal({
      driver: "cirrus-vga",
      id: "video0",
      bus: "pci.0",
      addr: "0x2",
    });
    expect(refusal(doc("<graphics type='vnc' port='5901' autoport='no'/>", "q35")).path).to.equal(
      "/domain/devices/video",
    );
  });
});
