/** virsh output handling that needs no daemon: batch error lines, version parsing, quoting. */
import { expect } from "chai";
import { hwuuidModeFor } from "../../provider/backends/capabilities";
import { parseVersionOutput, unexcusedErrors, virshQuote } from "../../provider/backends/virsh/virsh-backend";

describe("virsh batch errors", () => {
  it("a tolerated cause excuses itself and its 'Failed to' preface, nothing else", () => {
    const stderr =
      "error: Failed to destroy domain 'x'\nerror: Requested operation is not valid: domain is not running\n";
    expect(unexcusedErrors(stderr, /domain is not running/)).to.deep.equal([]);
    const worse = stderr + "error: Failed to undefine domain 'x'\nerror: operation failed: busy\n";
    expect(unexcusedErrors(worse, /domain is not running/)).to.deep.equal([
      "error: Failed to undefine domain 'x'",
      "error: operation failed: busy",
    ]);
  });
});

describe("virsh version and hwuuid mode", () => {
  const out = (d: string, h: string) =>
    `Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: ${h}\nRunning against daemon: ${d}\n`;
  it("libvirt >= 11.7.0 is native; older with QEMU is passthrough; older without QEMU has none", () => {
    expect(hwuuidModeFor(parseVersionOutput(out("12.9.0", "QEMU 11.1.3"))).hwuuidMode).to.equal("native");
    expect(hwuuidModeFor(parseVersionOutput(out("11.7.0", "QEMU 10.0.0"))).hwuuidMode).to.equal("native");
    expect(hwuuidModeFor(parseVersionOutput(out("11.6.0", "QEMU 10.0.0"))).hwuuidMode).to.equal("passthrough");
    expect(hwuuidModeFor(parseVersionOutput(out("9.0.0", "QEMU 7.2.22"))).hwuuidMode).to.equal("passthrough");
    const t = hwuuidModeFor(parseVersionOutput(out("9.0.0", "Test 9.0.0")));
    expect(t.hwuuidMode).to.equal(undefined);
    expect(t.hwuuidUnsupportedReason).to.contain("libvirt 9.0.0").and.contain("11.7.0");
  });
});

describe("virsh quoting inside a batch", () => {
  it("leaves plain words alone and single-quotes the rest", () => {
    expect(virshQuote("web-1")).to.equal("web-1");
    expect(virshQuote("a b")).to.equal("'a b'");
    expect(virshQuote("it's")).to.equal("'it'\\''s'");
    expect(virshQuote('{"execute":"query-uuid"}')).to.equal(`'{"execute":"query-uuid"}'`);
    expect(virshQuote("C:\\dir x")).to.equal("'C:\\dir x'");
  });
});
