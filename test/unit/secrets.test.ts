/**
 * Security info (graphics passwords, network-disk cookies): the table of what libvirt keeps back
 * without `--security-info`, redaction, the semantic diff and `libvirt-domain diff` never
 * carrying a password, the CI preview report with `[secret]` values and with plaintext ones,
 * the provider's secrets boundary, and fleet plans keeping the template's password.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { diffDomains, formatDiffText } from "../../provider/diff/semantic";
import { DomainDef } from "../../provider/xml/domain";
import {
  hasSecurityInfo,
  isSecurityInfoPath,
  redactSecurityInfo,
  redactSecurityInfoXml,
  REDACTED,
  scrubSecurityInfo,
  SECURITY_INFO,
  xmlHasSecurityInfo,
  xmlSecurityInfoValues,
} from "../../provider/xml/security";
import { previewReport, readPreview } from "../../provider/report/preview";
import { main } from "../../provider/cli/main";
import {
  isSecret,
  markSecretXml,
  reveal,
  secret,
  SECRET_SIG,
  SECRET_SIG_KEY,
  withSecrets,
} from "../../provider/dynamic/secrets";
import { planFleet } from "../../provider/fleet/plan";
import { buildQemuArgv } from "../../provider/qemu/argv";

const PW = "Vnc&Pw'7";
const PW2 = "other-Pw9";
const COOKIE = "sess-c00kie-value";

const dom = (devices: string) => `<domain type='qemu'><name>d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/>${devices}</devices></domain>`;
const vnc = (pw?: string, extra = "") =>
  `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'${pw === undefined ? "" : ` passwd='${pw.replace(/&/g, "&amp;").replace(/'/g, "&apos;")}'`}${extra}/>`;
const cdrom = (cookie?: string) =>
  `<disk type='network' device='cdrom'><driver name='qemu' type='raw'/><source protocol='https' name='/x.iso'><host name='example.org' port='443'/>${
    cookie === undefined ? "" : `<cookies><cookie name='sess'>${cookie}</cookie></cookies>`
  }</source><target dev='hdc' bus='ide'/><readonly/></disk>`;

/** Every string in a value, deeply (to look for a password anywhere). */
function text(v: unknown): string {
  return JSON.stringify(v);
}

describe("security info table (what libvirt formats only with --security-info)", () => {
  it("lists the graphics password and network-disk cookies, each with libvirt's formatter", () => {
    expect(SECURITY_INFO.map((r) => [r.path, r.libvirt])).to.deep.equal([
      ["/domain/devices/graphics/@passwd", "virDomainGraphicsAuthDefFormatAttr"],
      ["/domain/devices/disk/**/source/cookies/cookie", "virDomainDiskSourceFormatNetworkCookies"],
    ]);
  });

  it("hasSecurityInfo: a VNC, SPICE or RDP password (empty too) and a cookie count; ports and passwdValidTo alone do not", () => {
    expect(hasSecurityInfo(DomainDef.parse(dom(vnc(PW))))).to.equal(true);
    expect(hasSecurityInfo(DomainDef.parse(dom(vnc("")))), "an empty password is set").to.equal(true);
    expect(hasSecurityInfo(DomainDef.parse(dom("<graphics type='spice' autoport='yes' passwd='x'/>")))).to.equal(true);
    expect(hasSecurityInfo(DomainDef.parse(dom("<graphics type='rdp' autoport='yes' passwd='x'/>")))).to.equal(true);
    expect(hasSecurityInfo(DomainDef.parse(dom(cdrom(COOKIE))))).to.equal(true);
    expect(hasSecurityInfo(DomainDef.parse(dom(vnc() + cdrom())))).to.equal(false);
    expect(hasSecurityInfo(DomainDef.parse(dom("<interface type='user'><model type='virtio'/></interface>")))).to.equal(
      false,
    );
  });

  it("isSecurityInfoPath: by element chain, whatever the identity keys", () => {
    expect(isSecurityInfoPath("/domain/devices/graphics[type=vnc]/@passwd")).to.equal(true);
    expect(isSecurityInfoPath("/domain/devices/graphics[2]/@passwd")).to.equal(true);
    expect(isSecurityInfoPath("/domain/devices/graphics[type=vnc]/@port")).to.equal(false);
    expect(isSecurityInfoPath("/domain/devices/graphics[type=vnc]")).to.equal(false);
    expect(isSecurityInfoPath("/domain/devices/disk[target=hdc]/source/cookies/cookie")).to.equal(true);
    expect(isSecurityInfoPath("/domain/devices/disk[target=vda]/backingStore/source/cookies/cookie[2]")).to.equal(true);
    expect(isSecurityInfoPath("/domain/devices/disk[target=hdc]/source/@name")).to.equal(false);
    expect(isSecurityInfoPath("/domain/devices/hostdev/source/cookies/cookie")).to.equal(false);
  });

  it("redaction replaces the values with a fixed marker (never derived from them) and keeps everything else", () => {
    const def = DomainDef.parse(dom(vnc(PW) + cdrom(COOKIE)));
    const red = redactSecurityInfo(def);
    const out = red.format();
    expect(out).to.not.contain("Pw");
    expect(out).to.not.contain(COOKIE);
    expect(out).to.contain(`passwd='${REDACTED}'`).and.contain(`<cookie name='sess'>${REDACTED}</cookie>`);
    expect(def.format(), "the original is untouched").to.contain("passwd='Vnc&amp;Pw&apos;7'");
    expect(out).to.equal(def.format().replace("Vnc&amp;Pw&apos;7", REDACTED).replace(COOKIE, REDACTED));
    expect(
      redactSecurityInfo(DomainDef.parse(dom(vnc(PW2)))).format(),
      "the same marker whatever the password",
    ).to.equal(redactSecurityInfo(DomainDef.parse(dom(vnc(PW)))).format());
  });

  it("XML text that does not parse is still redacted and still counts as holding security info", () => {
    const broken = `<domain><devices><graphics type='vnc' passwd='${PW2}'><graphics type="spice" passwd="${PW2}"/><cookie name='a'>${COOKIE}</cookie>`;
    const out = redactSecurityInfoXml(broken);
    expect(out).to.not.contain(PW2);
    expect(out).to.not.contain(COOKIE);
    expect(xmlHasSecurityInfo(broken)).to.equal(true);
    expect(xmlHasSecurityInfo(dom(vnc()))).to.equal(false);
    expect(xmlSecurityInfoValues(dom(vnc(PW))))
      .to.include(PW)
      .and.include("Vnc&amp;Pw&apos;7");
  });

  it("scrubbing a message removes the values, as written and decoded, and a quoted entity fragment of one", () => {
    const values = xmlSecurityInfoValues(dom(vnc("a&bad")).replace("a&amp;bad", "a&bad"));
    expect(values).to.include("a&bad");
    const msg = `xml: unterminated entity reference; got "&bad"; the password a&bad is wrong; name "d"`;
    const out = scrubSecurityInfo(msg, values);
    expect(out).to.not.contain("a&bad");
    expect(out).to.not.contain('"&bad"');
    expect(out).to.contain(`"${REDACTED}"`).and.contain('name "d"');
  });
});

describe("semantic diff never carries security info", () => {
  it("a password libvirt did not report (read without --security-info) is a change, shown redacted", () => {
    const d = diffDomains(DomainDef.parse(dom(vnc(PW))), DomainDef.parse(dom(vnc())));
    expect(d.changes).to.deep.equal([
      {
        path: "/domain/devices/graphics[type=vnc]/@passwd",
        kind: "add",
        old: undefined,
        new: REDACTED,
        class: "restart",
      },
    ]);
  });

  it("a changed password is a change; the same password is none", () => {
    const d = diffDomains(DomainDef.parse(dom(vnc(PW2))), DomainDef.parse(dom(vnc(PW))));
    expect(d.changes).to.deep.equal([
      {
        path: "/domain/devices/graphics[type=vnc]/@passwd",
        kind: "modify",
        old: REDACTED,
        new: REDACTED,
        class: "restart",
      },
    ]);
    expect(diffDomains(DomainDef.parse(dom(vnc(PW))), DomainDef.parse(dom(vnc(PW)))).changes).to.deep.equal([]);
  });

  it("an added or removed graphics device and a changed cookie show redacted values only", () => {
    const added = diffDomains(DomainDef.parse(dom(vnc(PW))), DomainDef.parse(dom("")));
    expect(added.changes.map((c) => [c.path, c.kind])).to.deep.equal([["/domain/devices/graphics[type=vnc]", "add"]]);
    expect(added.changes[0]?.new).to.contain(`passwd='${REDACTED}'`);
    const removed = diffDomains(DomainDef.parse(dom("")), DomainDef.parse(dom(vnc(PW))));
    expect(removed.changes[0]?.old).to.contain(`passwd='${REDACTED}'`);
    const cookie = diffDomains(DomainDef.parse(dom(cdrom(COOKIE))), DomainDef.parse(dom(cdrom("old-cookie"))));
    expect(cookie.changes).to.deep.equal([
      {
        path: "/domain/devices/disk[target=hdc]/source/cookies/cookie",
        kind: "modify",
        old: REDACTED,
        new: REDACTED,
        class: "restart",
      },
    ]);
    for (const d of [added, removed, cookie])
      for (const secret of ["Pw", "c00kie", "old-cookie"]) expect(text(d) + formatDiffText(d)).to.not.contain(secret);
  });

  it("`libvirt-domain diff` (text and --json) prints no password", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-secrets-"));
    try {
      fs.writeFileSync(path.join(dir, "desired.xml"), dom(vnc(PW2)));
      fs.writeFileSync(path.join(dir, "actual.xml"), dom(vnc(PW)));
      for (const extra of [[], ["--json"]]) {
        let out = "";
        const io = { out: (s: string) => (out += s), err: (s: string) => (out += s), stdin: () => "" };
        expect(
          await main(["diff", path.join(dir, "desired.xml"), path.join(dir, "actual.xml"), ...extra], io),
        ).to.equal(1);
        expect(out).to.contain("/domain/devices/graphics[type=vnc]/@passwd").and.contain(REDACTED);
        expect(out).to.not.contain("Pw");
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("no password through the gaps a review found", () => {
  const run = async (args: string[], files: Record<string, string>): Promise<string> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-secrets-"));
    try {
      for (const [n, t] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), t);
      let out = "";
      const io = { out: (x: string) => (out += x), err: (x: string) => (out += x), stdin: () => "" };
      await main(
        args.map((a) => (a in files ? path.join(dir, a) : a)),
        io,
      );
      return out;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it("a syntax error inside a password (`<`, `]]>`) names line and column, never the text there: parser, CLI", async () => {
    for (const text of [
      dom(`<graphics type='vnc' passwd='Xy<Secret99'/>`),
      dom(`<graphics type='vnc' passwd="Xy<Secret99"/>`),
    ]) {
      let err: unknown;
      try {
        DomainDef.parse(text);
      } catch (e) {
        err = e;
      }
      expect(String((err as Error).message))
        .to.match(/line 2, column \d+/)
        .and.not.contain("Secret99");
      for (const cmd of ["qemu-argv", "identity", "format"])
        expect(await run([cmd, "d.xml"], { "d.xml": text }))
          .to.contain("error:")
          .and.not.contain("Secret99");
    }
  });

  it("a graphics type holding `]` or `/` cannot move the password out of the redacted path", async () => {
    const weird = (pw: string) => dom(`<graphics type='vnc]/x' passwd='${pw}'/>`);
    const d = diffDomains(DomainDef.parse(weird("hunter22")), DomainDef.parse(dom("")));
    expect(formatDiffText(d)).to.not.contain("hunter22");
    const m = diffDomains(DomainDef.parse(weird("hunter22")), DomainDef.parse(weird("other999")));
    expect(JSON.stringify(m.changes)).to.not.contain("hunter22").and.not.contain("other999");
    expect(await run(["diff", "a.xml", "b.xml"], { "a.xml": weird("hunter22"), "b.xml": weird("other999") }))
      .to.not.contain("hunter22")
      .and.not.contain("other999");
  });

  it("scrubbing: a password no caller knows is removed by pattern; a short one is replaced only where it stands as a value", () => {
    expect(scrubSecurityInfo(`bad: <graphics passwd='changed-behind-our-back'/>`)).to.not.contain(
      "changed-behind-our-back",
    );
    const msg = `fix: correct the XML syntax; got passwd="x" near =x,`;
    const out = scrubSecurityInfo(msg, ["x"]);
    expect(out).to.contain("correct the XML syntax").and.not.contain(`"x"`).and.not.contain("=x,");
  });
});

/** A `pulumi preview --json` document with one Domain update. */
function preview(
  newXml: unknown,
  oldXml: unknown,
  extra: Record<string, unknown> = {},
  op = "update",
  oldInputs: Record<string, unknown> = {},
): string {
  const type = "pulumi-nodejs:dynamic/libvirt-domain:Resource";
  return JSON.stringify({
    steps: [
      {
        op,
        urn: `urn:pulumi:e2e::p::${type}::web`,
        oldState:
          op === "create"
            ? undefined
            : {
                type,
                inputs: { name: "web-1", xml: oldXml, ...extra, ...oldInputs },
                outputs: { name: "web-1", xml: oldXml, guestUuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d" },
              },
        newState: { type, inputs: { name: "web-1", xml: newXml, ...extra }, outputs: {} },
      },
    ],
    changeSummary: { [op]: 1 },
  });
}

describe("preview report with secrets", () => {
  it("XML shown as [secret]: no failure; the domain's XML changes are said to be hidden; the guest UUID comes from the hwuuid input", () => {
    const md = previewReport(preview("[secret]", "[secret]", { hwuuid: "5D5B0F1D-128B-4517-8E65-B258A8734C1D" }));
    expect(md).to.contain(
      "| `web-1` | update | unknown (secret XML) | `5d5b0f1d-128b-4517-8e65-b258a8734c1d` (unchanged) |",
    );
    expect(md)
      .to.contain("### web-1: update")
      .and.contain("The XML changes of this domain are hidden: its XML holds secrets");
    expect(readPreview(JSON.parse(preview("[secret]", "[secret]")))[0]?.xmlHidden).to.equal(true);
  });

  it("with the XML hidden, the typed inputs that change are listed, and one that needs a restart says so", () => {
    const md = previewReport(preview("[secret]", "[secret]", { memory: "96 MiB" }, "update", { memory: "64 MiB" }));
    expect(md).to.contain("| `web-1` | update | needed |");
    expect(md).to.contain('| input | old | new |\n|---|---|---|\n| `memory` | `"64 MiB"` | `"96 MiB"` |');
  });

  it("a create with [secret] XML and no hwuuid input does not guess the guest UUID", () => {
    const md = previewReport(preview("[secret]", undefined, {}, "create"));
    expect(md).to.contain("| `web-1` | create | - | new (not shown: secret XML) |");
  });

  it("plaintext XML (an older state, or secrets shown) is reported with the passwords redacted", () => {
    const md = previewReport(preview(dom(vnc(PW2)), dom(vnc(PW))));
    expect(md).to.contain(
      `| \`/domain/devices/graphics[type=vnc]/@passwd\` | \`${REDACTED}\` | \`${REDACTED}\` | restart |`,
    );
    expect(md).to.not.contain("Pw");
    const wrapped = previewReport(preview({ [SECRET_SIG_KEY]: SECRET_SIG, value: dom(vnc(PW2)) }, dom("")));
    expect(wrapped).to.contain("graphics[type=vnc]");
    expect(wrapped).to.not.contain("Pw");
  });

  it("a secret without its plaintext (a state's ciphertext) counts as hidden", () => {
    expect(
      readPreview(JSON.parse(preview({ [SECRET_SIG_KEY]: SECRET_SIG, ciphertext: "v1:abc" }, dom(""))))[0]?.xmlHidden,
    ).to.equal(true);
  });
});

describe("the provider's secrets boundary", () => {
  it("uses Pulumi's own sentinel", () => {
    expect(SECRET_SIG_KEY).to.equal(rpc.specialSigKey);
    expect(SECRET_SIG).to.equal(rpc.specialSecretSig);
    expect(isSecret(secret("x"))).to.equal(true);
    expect(reveal({ a: [secret("x")], b: secret(secret(1)) })).to.deep.equal({ a: ["x"], b: 1 });
  });

  it("marks xml and desiredXml secret when either holds security info, and leaves the rest alone", () => {
    const m = markSecretXml({ xml: dom(vnc()), desiredXml: dom(vnc(PW)), name: "d" });
    expect(isSecret(m.xml) && isSecret(m.desiredXml)).to.equal(true);
    expect(m.name).to.equal("d");
    const plain = { xml: dom(vnc()), desiredXml: dom(vnc()) };
    expect(markSecretXml(plain)).to.equal(plain);
  });

  it("reveals what it is given, marks what it returns, scrubs errors and check failures, and wraps a failed create's properties", async () => {
    const xml = dom(vnc(PW));
    const seen: unknown[] = [];
    const p = withSecrets({
      check: async (_o, n) => {
        seen.push(n.xml);
        return { inputs: { ...n }, failures: [{ property: "xml", reason: `xml: bad password ${PW}` }] };
      },
      diff: async () => ({ changes: false, replaces: [], deleteBeforeReplace: false }),
      create: async (i) => {
        seen.push(i.xml);
        throw Object.assign(new Error(`define failed: passwd='${PW}'`), {
          id: "d",
          properties: { xml: i.xml },
          reasons: [`define failed: ${PW}`],
        });
      },
      read: async (id, props) => ({ id, props: { ...props, desiredXml: props.xml } }),
      update: async (_id, _o, n) => ({ outs: { ...n } }),
      delete: async () => {
        throw new Error(`cannot delete: ${PW}`);
      },
    });
    const c = await p.check({}, { xml: secret(xml) });
    expect(seen[0]).to.equal(xml);
    expect(isSecret(c.inputs.xml)).to.equal(true);
    expect(text(c.failures)).to.not.contain(PW);
    expect(text(c.failures)).to.contain(REDACTED);
    const err = (await p.create({ xml }).catch((e) => e)) as {
      message: string;
      stack: string;
      reasons: string[];
      properties: Record<string, unknown>;
    };
    expect(err.message + err.stack + text(err.reasons)).to.not.contain(PW);
    expect(isSecret(err.properties.xml)).to.equal(true);
    const r = await p.read("d", { xml });
    expect(isSecret(r.props.xml) && isSecret(r.props.desiredXml)).to.equal(true);
    expect(isSecret((await p.update("d", {}, { xml })).outs.xml)).to.equal(true);
    expect(((await p.delete("d", { xml }).catch((e) => e)) as Error).message).to.not.contain(PW);
  });
});

describe("QEMU command line with a VNC password", () => {
  const withUuid = (devices: string) =>
    DomainDef.parse(
      dom(devices).replace("<name>d</name>", "<name>d</name><uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid>"),
    );

  it("refers to a secret object reading a file in the secret directory; the password is only in the file list", () => {
    const cmd = buildQemuArgv(withUuid(vnc(PW)), { secretDir: "/state/d" });
    expect(cmd.argv.join(" ")).to.not.contain(PW);
    expect(cmd.argv).to.include(
      JSON.stringify({ "qom-type": "secret", id: "vnc0-secret", file: "/state/d/vnc0-secret", format: "raw" }),
    );
    expect(cmd.argv).to.include("127.0.0.1:0,to=99,password-secret=vnc0-secret,audiodev=audio1");
    expect(cmd.secretFiles).to.deep.equal([{ path: "/state/d/vnc0-secret", data: PW }]);
  });

  it("refuses a password longer than 8 bytes with libvirt's text, without quoting it", () => {
    let err: Error | undefined;
    try {
      buildQemuArgv(withUuid(vnc("nine-char")));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.equal(
      "/domain/devices/graphics[1]/@passwd: VNC password is 9 characters long, only 8 permitted; fix: use a VNC password of at most 8 characters",
    );
  });
});

describe("fleet plans keep the template's password", () => {
  const template = (pw: string) =>
    `<domain type='qemu'><name>t</name><uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices>${vnc(pw).replace("port='-1'", "port='5901'").replace("autoport='yes'", "autoport='no'")}</devices></domain>`;
  const plan = (pw: string) =>
    planFleet({
      fleetName: "web",
      project: "p",
      stack: "s",
      templateXml: template(pw),
      keys: ["1", "2"],
      hwuuidPolicy: { kind: "derive" },
    });

  it("each member's XML carries the password (its port reset)", () => {
    for (const m of plan(PW).members) {
      const g = DomainDef.parse(m.xml).deviceElements("graphics")[0];
      expect(g?.attrs.find((a) => a.name === "passwd")?.value).to.equal(PW);
      expect(g?.attrs.find((a) => a.name === "port")?.value).to.equal("-1");
    }
  });

  it("the template digest (stored in clear as a replace trigger) does not depend on the password", () => {
    expect(plan(PW).templateDigest).to.equal(plan(PW2).templateDigest);
    expect(plan(PW).templateDigest).to.not.equal(
      planFleet({
        fleetName: "web",
        project: "p",
        stack: "s",
        templateXml: template(PW).replace("64", "128"),
        keys: ["1"],
        hwuuidPolicy: { kind: "derive" },
      }).templateDigest,
    );
  });
});
