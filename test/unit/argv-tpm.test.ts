/**
 * `<tpm>` on the QEMU-direct path (issue 12, r3-F): an emulator TPM is the chardev, tpmdev and
 * device libvirt writes (tests/qemuxmlconfdata tpm-emulator*.x86_64-latest.args) on the socket of
 * a swtpm the backend starts (the builder returns what swtpm needs: version, socket, state); an
 * external TPM is the same arguments on the user's socket; what needs a host TPM, libvirt's
 * secrets or swtpm_setup is refused naming it, and libvirt's rules are checked as it does.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { refusalOrAccepted, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (tpm: string, arch = "x86_64", machine = "pc") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='${arch}' machine='${machine}'>hvm</type></os><devices>${tpm}</devices></domain>`,
  );

/** The TPM arguments of a command line, in order. */
function tpmArgs(a: readonly string[]): string[] {
  const out: string[] = [];
  a.forEach((x, i) => {
    const v = a[i + 1] ?? "";
    if ((x === "-chardev" && v.includes("id=chrtpm")) || x === "-tpmdev" || (x === "-device" && v.includes("tpmdev")))
      out.push(x, v);
  });
  return out;
}

function refused(tpm: string, arch?: string): DomainXmlError {
  const r = refusalOrAccepted(doc(tpm, arch));
  if (r === "accepted") throw new Error(`accepted: ${tpm}`);
  expect(r.fix, "every refusal carries a fix").to.be.a("string").and.not.equal("");
  return r;
}

describe("QEMU command line: TPM (swtpm emulator, external socket)", () => {
  it("an emulator TPM 2.0 on tpm-crb: libvirt's chardev, tpmdev and device on the swtpm socket, and the swtpm to start", () => {
    const cmd = buildQemuArgv(doc("<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"), {
      swtpmSocketPath: "/state/d/swtpm.sock",
      tpmStateDir: "/state/d/tpm",
    });
    expect(tpmArgs(cmd.argv)).to.deep.equal([
      "-chardev",
      "socket,id=chrtpm,path=/state/d/swtpm.sock",
      "-tpmdev",
      "emulator,id=tpm-tpm0,chardev=chrtpm",
      "-device",
      '{"driver":"tpm-crb","tpmdev":"tpm-tpm0","id":"tpm0"}',
    ]);
    expect(cmd.swtpm).to.deep.equal([
      {
        path: "/domain/devices/tpm[1]",
        version: "2.0",
        socketPath: "/state/d/swtpm.sock",
        state: { type: "dir", path: "/state/d/tpm/tpm2", written: false },
        persistentState: false,
      },
    ]);
  });

  it("libvirt's defaults: no model is tpm-tis, and tpm-tis on x86 without a version is TPM 1.2 in libvirt's directories", () => {
    const cmd = buildQemuArgv(doc("<tpm><backend type='emulator'/></tpm>"));
    expect(values(cmd.argv, "-device")).to.include('{"driver":"tpm-tis","tpmdev":"tpm-tpm0","id":"tpm0"}');
    expect(values(cmd.argv, "-chardev")).to.include("socket,id=chrtpm,path=/run/libvirt-domain/d/swtpm.sock");
    expect(cmd.swtpm[0]?.version).to.equal("1.2");
    expect(cmd.swtpm[0]?.state).to.deep.equal({
      type: "dir",
      path: `/var/lib/libvirt/swtpm/${U}/tpm1.2`,
      written: false,
    });
    // tpm-crb without a version is TPM 2.0 (qemuDomainTPMDefPostParse)
    expect(buildQemuArgv(doc("<tpm model='tpm-crb'><backend type='emulator'/></tpm>")).swtpm[0]?.version).to.equal(
      "2.0",
    );
  });

  it("a domain without a TPM starts no swtpm and has no TPM argument", () => {
    const cmd = buildQemuArgv(doc(""));
    expect(cmd.swtpm).to.deep.equal([]);
    expect(tpmArgs(cmd.argv)).to.deep.equal([]);
  });

  it("<source type='dir'|'file'>, persistent_state and debug reach swtpm, not QEMU", () => {
    const dir = buildQemuArgv(
      doc(
        "<tpm model='tpm-tis'><backend type='emulator' version='2.0' persistent_state='yes' debug='3'><source type='dir' path='/keys/d'/></backend></tpm>",
      ),
      { swtpmSocketPath: "/s.sock" },
    );
    expect(dir.swtpm[0]).to.deep.include({
      state: { type: "dir", path: "/keys/d", written: true },
      persistentState: true,
      logLevel: 3,
    });
    const file = buildQemuArgv(
      doc("<tpm><backend type='emulator' version='2.0'><source type='file' path='/keys/d.state'/></backend></tpm>"),
      { swtpmSocketPath: "/s.sock" },
    );
    expect(file.swtpm[0]?.state).to.deep.equal({ type: "file", path: "/keys/d.state" });
    expect(tpmArgs(dir.argv)).to.deep.equal(tpmArgs(file.argv));
  });

  it("an external TPM: the same arguments on the user's socket (commas escaped), nothing to start", () => {
    const cmd = buildQemuArgv(
      doc(
        "<tpm model='tpm-tis'><backend type='external'><source type='unix' mode='connect' path='/run/a,b.sock'/></backend></tpm>",
      ),
    );
    expect(tpmArgs(cmd.argv)).to.deep.equal([
      "-chardev",
      "socket,id=chrtpm,path=/run/a,,b.sock",
      "-tpmdev",
      "emulator,id=tpm-tpm0,chardev=chrtpm",
      "-device",
      '{"driver":"tpm-tis","tpmdev":"tpm-tpm0","id":"tpm0"}',
    ]);
    expect(cmd.swtpm).to.deep.equal([]);
    const e = refused(
      "<tpm><backend type='external'><source type='unix' mode='bind' path='/run/a.sock'/></backend></tpm>",
    );
    expect([e.path, e.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/source/@mode", "bind"]);
    expect(refused("<tpm><backend type='external'/></tpm>").path).to.equal("/domain/devices/tpm[1]/backend/source");
  });

  it("a host TPM (passthrough) is refused naming the backend type and pointing to the emulator", () => {
    const e = refused("<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>");
    expect([e.path, e.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/@type", "passthrough"]);
    expect(e.fix).to.match(/type='emulator'/);
  });

  it("<active_pcr_banks> of a TPM 2.0 reach swtpm_setup, in libvirt's order; a TPM 1.2 or an unknown bank is refused", () => {
    const cmd = buildQemuArgv(
      doc(
        "<tpm model='tpm-tis'><backend type='emulator' version='2.0'><active_pcr_banks><sha512/><sha256/></active_pcr_banks></backend></tpm>",
      ),
    );
    expect(cmd.swtpm[0]?.pcrBanks).to.deep.equal(["sha256", "sha512"]);
    const v12 = refused(
      "<tpm model='tpm-tis'><backend type='emulator' version='1.2'><active_pcr_banks><sha1/></active_pcr_banks></backend></tpm>",
    );
    expect(v12.path).to.equal("/domain/devices/tpm[1]/backend/active_pcr_banks");
    const md5 = refused(
      "<tpm><backend type='emulator' version='2.0'><active_pcr_banks><md5/></active_pcr_banks></backend></tpm>",
    );
    expect([md5.path, md5.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/active_pcr_banks/md5", "md5"]);
  });

  it("what needs libvirt's secrets or a newer swtpm is refused naming the element", () => {
    for (const [inner, el] of [
      ["<encryption secret='32ee7e76-2178-47a1-ab7b-269e6e348015'/>", "encryption"],
      ["<profile name='custom:restricted'/>", "profile"],
    ] as const) {
      const e = refused(`<tpm model='tpm-tis'><backend type='emulator' version='2.0'>${inner}</backend></tpm>`);
      expect(e.path).to.equal(`/domain/devices/tpm[1]/backend/${el}`);
    }
    expect(refused("<tpm><backend type='emulator'/><alias name='ua-tpm'/></tpm>").path).to.equal(
      "/domain/devices/tpm[1]/alias",
    );
  });

  it("libvirt's rules: a backend is required, one TPM, TPM 1.2 only on tpm-tis, versions 1.2 and 2.0, x86 models", () => {
    const noBackend = refused("<tpm model='tpm-tis'></tpm>");
    expect([noBackend.path, noBackend.reason]).to.deep.equal([
      "/domain/devices/tpm[1]/backend",
      "missing TPM device backend",
    ]);
    const two = refused("<tpm><backend type='emulator'/></tpm><tpm><backend type='emulator'/></tpm>");
    expect([two.path, two.reason]).to.deep.equal([
      "/domain/devices/tpm[2]",
      "only a single TPM non-proxy device is supported",
    ]);
    const crb12 = refused("<tpm model='tpm-crb'><backend type='emulator' version='1.2'/></tpm>");
    expect([crb12.path, crb12.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/@version", "1.2"]);
    const v3 = refused("<tpm><backend type='emulator' version='3.0'/></tpm>");
    expect([v3.path, v3.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/@version", "3.0"]);
    const spapr = refused("<tpm model='tpm-spapr'><backend type='emulator'/></tpm>");
    expect([spapr.path, spapr.value]).to.deep.equal(["/domain/devices/tpm[1]/@model", "tpm-spapr"]);
    const debug = refused("<tpm><backend type='emulator' debug='x'/></tpm>");
    expect([debug.path, debug.value]).to.deep.equal(["/domain/devices/tpm[1]/backend/@debug", "x"]);
    const src = refused("<tpm><backend type='emulator'><source type='dir' path='rel'/></backend></tpm>");
    expect(src.path).to.equal("/domain/devices/tpm[1]/backend/source");
  });
});
