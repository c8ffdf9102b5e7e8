/**
 * Disk images as libvirt storage volumes, through virsh over any libvirt URI (local,
 * `qemu+unix://`, `qemu+ssh://`): nothing here reads or writes the hypervisor's files itself,
 * so it works where the hypervisor's file system is out of reach (a remote host, a chroot).
 *
 * - {@link VolumeStore.resolvePath}: a disk's file path to its pool and volume (`vol-pool`,
 *   `vol-dumpxml`); a file in a pool's directory that libvirt has not seen yet is found after a
 *   `pool-refresh`; a file in no pool is refused, naming the pool to define.
 * - {@link VolumeStore.createOverlay}: a qcow2 volume whose backing store is another volume
 *   (`vol-create` with `<backingStore>`); {@link VolumeStore.cloneVolume}: a full copy
 *   (`vol-create-from`, the call behind `vol-clone`, with our name and mode).
 * - Never over an existing volume: libvirt refuses a name its pool has and a path where a file
 *   already is, even one it has not listed (`volume target path ... already exists`); we never
 *   delete first. Atomic as libvirt makes it: a build that fails is removed by libvirt itself,
 *   and a volume left by a crash in the middle keeps its name taken (create refuses, naming it)
 *   and is never recorded as ours.
 * - {@link VolumeStore.deleteVolume}: only while {@link judgeVolume} says the volume is still
 *   the one we made (pool uuid, key, path, format, capacity, backing store, ctime and mtime as
 *   recorded at creation).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  constants as fsc,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import {
  copyVolumeXml,
  judgeVolume,
  overlayVolumeXml,
  parsePoolXml,
  parseVolumeXml,
  stampOf,
  checkVolumeName,
  CONTROL_CHAR,
  volumeModeFor,
  VolumeError,
  type PoolInfo,
  type PooledVolume,
  type VolumeJudgement,
  type VolumeStamp,
} from "../xml/volume";
import { runVirsh, runVirshSync, VirshError, type VirshRunOptions } from "./virsh/exec";
import { virshQuote } from "./virsh/virsh-backend";

/** libvirt's "no such volume" (VIR_ERR_NO_STORAGE_VOL), as virsh prints it. */
const NO_VOLUME = /Storage volume not found|no storage vol with matching/i;
/** libvirt's "no such pool" (VIR_ERR_NO_STORAGE_POOL). */
const NO_POOL = /Storage pool not found|no storage pool with matching/i;

/** Where a new volume goes. */
export interface VolumeTarget {
  /** The pool's name. */
  readonly pool: string;
  /** The new volume's name (a file name in the pool's directory). */
  readonly name: string;
}

/** Options of {@link VolumeStore.uploadVolume}. */
export interface UploadOptions {
  /** The image's format (`qcow2`, `raw`): the new volume's. */
  readonly format: string;
  /** Permission bits of the new volume (octal). @default the pool's */
  readonly mode?: string;
  /** Called as bytes are sent: so far, and the file's size. */
  readonly onProgress?: (sentBytes: number, totalBytes: number) => void;
  /** Stop the upload after this long. @default 3600000 (an hour) */
  readonly timeoutMs?: number;
}

/** Options of {@link VolumeStore.deleteVolume}. */
export interface DeleteVolumeOptions {
  /**
   * Also delete a volume judged `written` (same pool, key, path, format, capacity and backing,
   * but later times): only for a caller that knows by other means that nothing else was put in
   * its place. @default false
   */
  readonly acceptWritten?: boolean;
}

/**
 * {@link VolumeStore}: storage volumes on one libvirt connection, through virsh (argument arrays,
 * never a shell; XML passed in a private temporary file).
 */
export class VolumeStore {
  /**
   * @param uri the libvirt URI (any transport)
   * @param opts virsh options (binary, timeout: creating a copy of a large image takes a while)
   */
  constructor(
    public readonly uri: string,
    private readonly opts: VirshRunOptions = {},
  ) {}

  private async run(args: readonly string[]): Promise<string> {
    return (await runVirsh(this.uri, args, this.opts)).stdout;
  }

  /** Runs `args` with `xml` in a 0600 file in a private temporary directory (`--file PATH` is appended). */
  private async withXmlFile(xml: string, args: readonly string[]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "lvd-volume-"));
    try {
      const file = join(dir, "volume.xml");
      writeFileSync(file, xml, { mode: 0o600 });
      return await this.run([...args, "--file", file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The pool of that name, or undefined. */
  public async pool(name: string): Promise<PoolInfo | undefined> {
    try {
      return parsePoolXml(await this.run(["pool-dumpxml", "--pool", name]));
    } catch (e) {
      if (VirshError.isInstance(e) && NO_POOL.test(e.libvirtMessage)) return undefined;
      throw e;
    }
  }

  /** Every pool of this connection (defined or running), with its state. */
  public async pools(): Promise<Array<PoolInfo & { readonly active: boolean }>> {
    const names = (text: string): string[] =>
      text
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
    const all = names(await this.run(["pool-list", "--all", "--name"]));
    const active = new Set(names(await this.run(["pool-list", "--name"])));
    const out: Array<PoolInfo & { active: boolean }> = [];
    for (const n of all) {
      const p = await this.pool(n);
      if (p) out.push({ ...p, active: active.has(n) });
    }
    return out;
  }

  /**
   * The volume `name` in `pool`, or undefined when there is none (or its file is gone). The
   * answer is checked to be that volume: virsh falls back to a lookup by key or path when the
   * name is unknown, and that other volume is never returned.
   */
  public async volume(pool: string, name: string): Promise<PooledVolume | undefined> {
    const r = await this.batch(
      [
        ["pool-dumpxml", "--pool", pool],
        ["vol-dumpxml", "--pool", pool, "--vol", name],
      ],
      [NO_POOL, NO_VOLUME],
    );
    if (r.missing) return undefined;
    const at = r.stdout.indexOf("<volume");
    if (at < 0) return undefined;
    const p = parsePoolXml(r.stdout.slice(0, at));
    const v = parseVolumeXml(r.stdout.slice(at));
    if (v.name !== name) return undefined;
    return { ...v, pool: p.name, poolUuid: p.uuid };
  }

  /**
   * Several virsh commands in one process (one connection: over ssh, one handshake). An error
   * matching one of `missing` makes the answer `missing`; any other error throws a {@link VirshError}.
   */
  private async batch(
    commands: readonly (readonly string[])[],
    missing: readonly RegExp[],
  ): Promise<{ readonly stdout: string; readonly missing: boolean }> {
    const args = [commands.map((c) => c.map(virshQuote).join(" ")).join(" ; ")];
    const r = await runVirsh(this.uri, args, { ...this.opts, allowFailure: true });
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
    const causes = errors.filter((l) => !/^error: (Failed to|failed to) /.test(l));
    if (causes.some((l) => missing.some((m) => m.test(l)))) return { stdout: r.stdout, missing: true };
    if (errors.length > 0 || r.code !== 0)
      throw new VirshError(this.uri, args, r.code, errors.join("\n") || r.stderr, r.stdout);
    return { stdout: r.stdout, missing: false };
  }

  /**
   * The pool and volume of the file at `path` (a path on the hypervisor, as the domain XML has
   * it). A file in the directory of a running pool that libvirt has not listed yet is found
   * after a `pool-refresh`. Throws a {@link VolumeError} naming the fix: the directory is no
   * pool's (define one), the pool is not running (start it), or no such file.
   */
  public async resolvePath(path: string): Promise<PooledVolume> {
    if (!posix.isAbsolute(path) || CONTROL_CHAR.test(path))
      throw new VolumeError("not an absolute file path", {
        path: "disk",
        value: path,
        allowed: "an absolute path on the hypervisor",
        fix: "give the disk's file path as the domain XML has it",
      });
    const found = await this.lookupPath(path);
    if (found) return found;
    const dir = posix.dirname(posix.normalize(path));
    const pools = (await this.pools()).filter((p) => p.targetPath && posix.normalize(p.targetPath) === dir);
    const running = pools.find((p) => p.active);
    if (running) {
      await this.run(["pool-refresh", "--pool", running.name]);
      const again = await this.lookupPath(path);
      if (again) return again;
      throw new VolumeError("no such volume in its pool", {
        path,
        value: path,
        allowed: `a file in pool ${running.name} (${dir})`,
        fix: `check the path: virsh -c ${this.uri} vol-list ${running.name} lists the volumes libvirt sees there`,
      });
    }
    if (pools[0])
      throw new VolumeError("the file's pool is not running", {
        path,
        value: path,
        allowed: `a volume of a running pool; ${dir} is the directory of pool ${pools[0].name}, which is inactive`,
        fix: `start the pool: virsh -c ${this.uri} pool-start ${pools[0].name} (and pool-autostart ${pools[0].name})`,
      });
    throw new VolumeError("the file is in no storage pool", {
      path,
      value: path,
      allowed: "a volume of a libvirt storage pool (images are made and removed through libvirt's storage API)",
      fix: `define the directory as a pool: virsh -c ${this.uri} pool-define-as NAME dir --target ${dir} && virsh -c ${this.uri} pool-start NAME && virsh -c ${this.uri} pool-autostart NAME`,
    });
  }

  /** `vol-pool` (name and uuid) + `vol-dumpxml` by path, in one virsh (libvirt looks the path up as a key, then as a path); undefined when not found. */
  private async lookupPath(path: string): Promise<PooledVolume | undefined> {
    const r = await this.batch(
      [
        ["vol-pool", "--vol", path],
        ["vol-pool", "--uuid", "--vol", path],
        ["vol-dumpxml", "--vol", path],
      ],
      [NO_VOLUME],
    );
    if (r.missing) return undefined;
    const at = r.stdout.indexOf("<volume");
    const [pool, poolUuid] = r.stdout
      .slice(0, Math.max(at, 0))
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    if (at < 0 || pool === undefined || poolUuid === undefined)
      throw new VolumeError("virsh did not name the volume's pool", {
        path,
        value: r.stdout.slice(0, 200),
        fix: "report this: virsh vol-pool printed something unexpected",
      });
    return { ...parseVolumeXml(r.stdout.slice(at)), pool, poolUuid };
  }

  /**
   * Creates `target` as a qcow2 overlay whose backing store is the volume `backing` (read-only
   * for the overlay's guest): capacity the backing volume's (or `capacityBytes`), mode the
   * backing volume's with owner read-write. Never over an existing volume or file. Returns the
   * stamp that proves later that it is ours.
   */
  public async createOverlay(
    target: VolumeTarget,
    backing: PooledVolume,
    opts: { readonly capacityBytes?: string; readonly mode?: string } = {},
  ): Promise<VolumeStamp> {
    checkVolumeName(target.name, `${target.pool}/${target.name}`);
    const xml = overlayVolumeXml({
      name: target.name,
      capacityBytes: opts.capacityBytes ?? backing.capacityBytes,
      backingPath: backing.path,
      backingFormat: backing.format ?? "raw",
      mode: opts.mode ?? volumeModeFor(backing.mode),
    });
    await this.create(target, () => this.withXmlFile(xml, ["vol-create", "--pool", target.pool]));
    return this.stampNew(target);
  }

  /**
   * Creates `target` as a full copy of `source` (libvirt copies the data on the hypervisor:
   * `vol-create-from`, what `vol-clone` calls, across pools too): format the source's (or
   * `format`), mode the source's with owner read-write, no backing store. Never over an
   * existing volume or file.
   */
  public async cloneVolume(
    target: VolumeTarget,
    source: PooledVolume,
    opts: { readonly format?: string; readonly mode?: string } = {},
  ): Promise<VolumeStamp> {
    checkVolumeName(target.name, `${target.pool}/${target.name}`);
    const xml = copyVolumeXml({
      name: target.name,
      capacityBytes: source.capacityBytes,
      format: opts.format ?? source.format ?? "raw",
      mode: opts.mode ?? volumeModeFor(source.mode),
    });
    await this.create(target, () =>
      this.withXmlFile(xml, [
        "vol-create-from",
        "--pool",
        target.pool,
        "--vol",
        source.name,
        "--inputpool",
        source.pool,
      ]),
    );
    return this.stampNew(target);
  }

  /**
   * Seeds a host with an image from this machine: uploads `file` through libvirt's volume upload
   * stream (`vol-upload`, over the connection: ssh included) and makes `target` from it. Never
   * over an existing volume; never a half-uploaded `target`: the bytes go into a scratch volume
   * (`NAME.lvd-part-RANDOM`), `target` is made from it by libvirt (`vol-create-from`, removed by
   * libvirt when that fails) and the scratch volume is deleted, whatever happens. `onProgress`
   * gets the bytes sent so far and the total. The upload is bounded by `timeoutMs`.
   */
  public async uploadVolume(target: VolumeTarget, file: string, opts: UploadOptions): Promise<VolumeStamp> {
    checkVolumeName(target.name, `${target.pool}/${target.name}`);
    const where = `${target.pool}/${target.name}`;
    if (await this.volume(target.pool, target.name))
      throw new VolumeError("a volume of that name already exists; it is never overwritten", {
        path: where,
        value: target.name,
        fix: `the host has it already: use it, or remove it yourself if it is not needed: virsh -c ${this.uri} vol-delete --pool ${target.pool} ${target.name}`,
      });
    const totalBytes = statSync(file).size;
    const part: VolumeTarget = { pool: target.pool, name: `${target.name}.lvd-part-${randomBytes(4).toString("hex")}` };
    checkVolumeName(part.name, `${part.pool}/${part.name}`);
    const xml = copyVolumeXml({
      name: part.name,
      capacityBytes: String(totalBytes),
      format: "raw",
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    });
    await this.create(part, () => this.withXmlFile(xml, ["vol-create", "--pool", part.pool]));
    try {
      await this.streamUpload(part, file, totalBytes, opts);
      const scratch = await this.volume(part.pool, part.name);
      if (!scratch)
        throw new VolumeError("the uploaded scratch volume is gone", {
          path: `${part.pool}/${part.name}`,
          fix: "run the operation again; check that nothing else deletes volumes in that pool",
        });
      // libvirt reads the uploaded bytes as the image they are: the scratch volume is a file of
      // the image's format (raw by declaration); the copy is made in that format.
      const source: PooledVolume = { ...scratch, format: opts.format };
      return await this.cloneVolume(target, source, {
        format: opts.format,
        ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
      });
    } finally {
      await this.run(["vol-delete", "--pool", part.pool, "--vol", part.name]).catch(() => undefined);
    }
  }

  /**
   * `vol-upload` of `file` into `target`, fed through a FIFO in a private temporary directory
   * (virsh opens its `--file`; a pipe Node gives a child is a socket, which it cannot open), so
   * the bytes sent can be counted.
   */
  private async streamUpload(
    target: VolumeTarget,
    file: string,
    totalBytes: number,
    opts: UploadOptions,
  ): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 3600000;
    const dir = mkdtempSync(join(tmpdir(), "lvd-upload-"));
    const fifo = join(dir, "image");
    const mk = spawnSync("mkfifo", ["-m", "600", fifo], { encoding: "utf8" });
    if (mk.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new VolumeError("cannot make the FIFO the upload is fed through", {
        path: fifo,
        value: mk.stderr || String(mk.error ?? mk.status),
        fix: "install coreutils (mkfifo) on the machine that runs Pulumi, and check that TMPDIR is writable",
      });
    }
    const args = ["vol-upload", "--pool", target.pool, "--vol", target.name, "--file", fifo];
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn(this.opts.virsh ?? process.env.VIRSH ?? "virsh", ["-q", "-c", this.uri, ...args], {
          stdio: ["ignore", "ignore", "pipe"],
          env: { ...process.env, LC_ALL: "C" },
        });
        let stderr = "";
        let sent = 0;
        let done = false;
        const input = createReadStream(file);
        const output = createWriteStream(fifo);
        const finish = (e?: Error): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          input.destroy();
          output.destroy();
          if (e) {
            // A writer still waiting for virsh to open the FIFO would wait forever: open it ourselves.
            try {
              closeSync(openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK));
            } catch {
              // gone already
            }
            reject(e);
          } else resolve();
        };
        const timer = setTimeout(() => {
          child.kill("SIGTERM");
          finish(
            new VolumeError(`the upload did not finish within ${timeoutMs / 1000} s`, {
              path: `${target.pool}/${target.name}`,
              value: `${sent} of ${totalBytes} bytes sent`,
              fix: `check the connection to ${this.uri}; a larger image needs a longer timeoutMs`,
            }),
          );
        }, timeoutMs);
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", (e) => finish(new VirshError(this.uri, args, null, `error: ${e.message}`, "")));
        child.on("close", (code, signal) => {
          if (code === 0 && sent === totalBytes) finish();
          else
            finish(
              new VirshError(
                this.uri,
                args,
                code ?? signal ?? null,
                stderr || `error: sent ${sent} of ${totalBytes} bytes`,
                "",
              ),
            );
        });
        output.on("error", () => undefined); // virsh gone: its exit says why
        input.on("data", (chunk: string | Buffer) => {
          sent += chunk.length;
          opts.onProgress?.(sent, totalBytes);
        });
        input.on("error", (e) => {
          child.kill("SIGTERM");
          finish(e);
        });
        input.pipe(output);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Downloads the volume `source` of this connection into `file` on this machine through
   * libvirt's volume download stream (`vol-download`, over the connection: ssh included). `file`
   * must not exist (it is created 0600). `onProgress` gets the bytes received so far (polled) and
   * the volume's allocation (what the stream carries for a file volume). Bounded by `timeoutMs`;
   * on failure `file` may be left partial: the caller removes it.
   */
  public async downloadVolume(
    source: PooledVolume,
    file: string,
    opts: {
      readonly onProgress?: (receivedBytes: number, totalBytes: number) => void;
      readonly timeoutMs?: number;
    } = {},
  ): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? 3600000;
    const totalBytes = Number(source.allocationBytes ?? source.capacityBytes);
    closeSync(openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600));
    const size = (): number => {
      try {
        return statSync(file).size;
      } catch {
        return 0;
      }
    };
    const timer = setInterval(() => opts.onProgress?.(size(), totalBytes), 1000);
    try {
      await runVirsh(this.uri, ["vol-download", "--pool", source.pool, "--vol", source.name, "--file", file], {
        ...this.opts,
        timeoutMs,
      });
    } catch (e) {
      if (VirshError.isInstance(e) && typeof e.exitCode === "string")
        throw new VolumeError(
          `the download did not finish within ${timeoutMs / 1000} s`,
          {
            path: `${source.pool}/${source.name}`,
            value: `${size()} of ${totalBytes} bytes received`,
            fix: `check the connection to ${this.uri}; a larger image needs a longer timeout`,
          },
          { cause: e },
        );
      throw e;
    } finally {
      clearInterval(timer);
    }
    const got = size();
    // The allocation is in blocks: the file may be a little larger.
    opts.onProgress?.(got, Math.max(totalBytes, got));
    return got;
  }

  /** Runs a create; libvirt's refusals become {@link VolumeError}s naming the fix. */
  private async create(target: VolumeTarget, go: () => Promise<string>): Promise<void> {
    const where = `${target.pool}/${target.name}`;
    try {
      await go();
    } catch (e) {
      if (!VirshError.isInstance(e)) throw e;
      const m = e.libvirtMessage;
      if (/exists already|already exists/i.test(m))
        throw new VolumeError(
          "a volume or file of that name already exists; it is never overwritten",
          {
            path: where,
            value: m,
            fix: `choose another name, or remove what is there yourself if it is not needed: virsh -c ${this.uri} vol-delete --pool ${target.pool} ${target.name}`,
          },
          { cause: e },
        );
      if (NO_POOL.test(m))
        throw new VolumeError(
          "no such storage pool",
          {
            path: where,
            value: target.pool,
            fix: `define and start the pool first: virsh -c ${this.uri} pool-define-as ${target.pool} dir --target DIR && virsh -c ${this.uri} pool-start ${target.pool}`,
          },
          { cause: e },
        );
      throw new VolumeError(
        "libvirt could not create the volume",
        {
          path: where,
          value: m,
          fix: "see libvirt's message; a volume a failed build left behind is removed by libvirt, one left by a crash keeps its name taken until you delete it",
        },
        { cause: e },
      );
    }
  }

  /** The stamp of a volume we just created. */
  private async stampNew(target: VolumeTarget): Promise<VolumeStamp> {
    const v = await this.volume(target.pool, target.name);
    if (!v)
      throw new VolumeError("the volume was created but cannot be read back", {
        path: `${target.pool}/${target.name}`,
        fix: `check it and delete it yourself if it is not needed: virsh -c ${this.uri} vol-delete --pool ${target.pool} ${target.name}`,
      });
    return stampOf(v);
  }

  /** Whether the volume `stamp` recorded is still the one we made ({@link judgeVolume}). */
  public async judge(stamp: VolumeStamp): Promise<VolumeJudgement> {
    return judgeVolume(stamp, await this.volume(stamp.pool, stamp.name));
  }

  /**
   * Deletes the volume `stamp` recorded only while it is still the one we made (`ours`, or
   * `written` with `acceptWritten`); returns false when it is gone already. Anything else is
   * left alone and refused with a {@link VolumeError} naming what differs and the fix.
   */
  public async deleteVolume(stamp: VolumeStamp, opts: DeleteVolumeOptions = {}): Promise<boolean> {
    const where = `${stamp.pool}/${stamp.name}`;
    const j = await this.judge(stamp);
    if (j.verdict === "gone") return false;
    if (j.verdict === "other")
      throw new VolumeError("not the volume this provider made: left alone", {
        path: where,
        value: j.differences.join("; "),
        fix: `leave it, or delete it yourself if it is not needed (virsh -c ${this.uri} vol-delete --pool ${stamp.pool} ${stamp.name}); then refresh the stack so it forgets the volume it made`,
      });
    if (j.verdict === "written" && !opts.acceptWritten)
      throw new VolumeError(
        "written since it was made: its guest wrote to it, or another volume was put in its place (libvirt cannot tell which): left alone",
        {
          path: where,
          value: j.differences.join("; "),
          fix: `if it is the volume this stack made, delete it yourself: virsh -c ${this.uri} vol-delete --pool ${stamp.pool} ${stamp.name}`,
        },
      );
    try {
      await this.run(["vol-delete", "--pool", stamp.pool, "--vol", stamp.name]);
    } catch (e) {
      if (VirshError.isInstance(e) && NO_VOLUME.test(e.libvirtMessage)) return false;
      throw e;
    }
    return true;
  }
}

/** What {@link resolveStorageSync} found on one connection: the volumes of the paths asked, and every pool. */
export interface StorageView {
  /** Path -> its volume; a path in no pool (or not found) is absent. */
  readonly volumes: ReadonlyMap<string, PooledVolume>;
  /** Every pool of the connection (defined or running), with its state. */
  readonly pools: ReadonlyArray<PoolInfo & { readonly active: boolean }>;
}

/** A marker line `echo` prints between the commands of one batch. */
const MARK = "@@lvd-";

/** Runs one virsh batch synchronously; its stdout split at the `echo` markers (marker -> text). */
function batchSync(uri: string, commands: readonly (readonly string[])[], opts: VirshRunOptions): Map<string, string> {
  const args = [commands.map((c) => c.map(virshQuote).join(" ")).join(" ; ")];
  const r = spawnSync(opts.virsh ?? process.env.VIRSH ?? "virsh", ["-q", "-c", uri, ...args], {
    timeout: opts.timeoutMs ?? 120000,
    encoding: "utf8",
    env: { ...process.env, LC_ALL: "C" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error || r.status === null)
    throw new VirshError(uri, args, r.signal ?? null, `error: ${r.error?.message ?? "virsh did not finish"}`, "");
  // Errors of a lookup (no such volume) show as an empty section; a failed connection fails all.
  if (!r.stdout.includes(MARK)) throw new VirshError(uri, args, r.status, r.stderr, r.stdout);
  // `echo` under `-q` ends no line: markers delimit themselves (`@@lvd-KEY@@`).
  const out = new Map<string, string>();
  const parts = r.stdout.split(/@@lvd-([A-Za-z0-9]+)@@\n?/);
  for (let i = 1; i + 1 < parts.length; i += 2) out.set(parts[i]!, parts[i + 1]!);
  return out;
}

/** The `vol-pool` + `vol-pool --uuid` + `vol-dumpxml` section of one path; undefined when empty (not found). */
function pooledOf(text: string | undefined): PooledVolume | undefined {
  if (!text) return undefined;
  const at = text.indexOf("<volume");
  const [pool, poolUuid] = text
    .slice(0, Math.max(at, 0))
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (at < 0 || pool === undefined || poolUuid === undefined) return undefined;
  return { ...parseVolumeXml(text.slice(at)), pool, poolUuid };
}

/**
 * Synchronously (for a program that plans before it declares resources), over one connection:
 * the volume of each path (`vol-pool`, `vol-dumpxml`, by path) and every pool with its
 * directory and state. Two virsh processes (over ssh, two handshakes); a third refreshes the
 * running pools whose directory holds a path libvirt has not listed yet, then looks again. Reads
 * only (a `pool-refresh` rescans a directory). Throws a {@link VirshError} when the connection fails.
 */
export function resolveStorageSync(uri: string, paths: readonly string[], opts: VirshRunOptions = {}): StorageView {
  const lookups = (ps: readonly string[]): string[][] =>
    ps.flatMap((p, i) => [
      ["echo", `${MARK}v${i}@@`],
      ["vol-pool", "--vol", p],
      ["vol-pool", "--uuid", "--vol", p],
      ["vol-dumpxml", "--vol", p],
    ]);
  const first = batchSync(
    uri,
    [
      ...lookups(paths),
      ["echo", `${MARK}all@@`],
      ["pool-list", "--all", "--name"],
      ["echo", `${MARK}active@@`],
      ["pool-list", "--name"],
    ],
    opts,
  );
  const names = (t: string | undefined): string[] =>
    (t ?? "")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  const active = new Set(names(first.get("active")));
  const all = names(first.get("all"));
  const volumes = new Map<string, PooledVolume>();
  paths.forEach((p, i) => {
    const v = pooledOf(first.get(`v${i}`));
    if (v) volumes.set(p, v);
  });
  const pools: Array<PoolInfo & { active: boolean }> = [];
  if (all.length > 0) {
    const xmls = batchSync(
      uri,
      all.flatMap((n, i) => [
        ["echo", `${MARK}p${i}@@`],
        ["pool-dumpxml", "--pool", n],
      ]),
      opts,
    );
    all.forEach((n, i) => {
      const x = xmls.get(`p${i}`);
      if (x && x.includes("<pool")) pools.push({ ...parsePoolXml(x), active: active.has(n) });
    });
  }
  const missing = paths.filter((p) => !volumes.has(p) && posix.isAbsolute(p) && !CONTROL_CHAR.test(p));
  const refresh = new Set<string>();
  for (const p of missing) {
    const dir = posix.dirname(posix.normalize(p));
    const pool = pools.find((q) => q.active && q.targetPath && posix.normalize(q.targetPath) === dir);
    if (pool) refresh.add(pool.name);
  }
  if (refresh.size > 0) {
    const again = batchSync(
      uri,
      [...[...refresh].map((n) => ["pool-refresh", "--pool", n]), ...lookups(missing)],
      opts,
    );
    missing.forEach((p, i) => {
      const v = pooledOf(again.get(`v${i}`));
      if (v) volumes.set(p, v);
    });
  }
  return { volumes, pools };
}

/**
 * The name {@link definePoolSync} gives the pool of a directory: `lvd-` and 12 hex digits of
 * its SHA-256 (stable: the same directory gets the same name on every run and host).
 */
export function poolNameFor(dir: string): string {
  return `lvd-${createHash("sha256").update(posix.normalize(dir)).digest("hex").slice(0, 12)}`;
}

/**
 * Defines, starts and marks autostart a `dir` pool for `dir` (what a user opts into with a
 * fleet's `definePools`); nothing in the directory is changed (no `pool-build`). A pool of that
 * name defined already (an earlier run, or a parallel program) is started if needed and used.
 * Returns the pool's name.
 */
export function definePoolSync(uri: string, dir: string, opts: VirshRunOptions = {}): string {
  const name = poolNameFor(dir);
  const have =
    batchSync(
      uri,
      [
        ["echo", `${MARK}x@@`],
        ["pool-dumpxml", "--pool", name],
      ],
      opts,
    ).get("x") ?? "";
  if (!have.includes("<pool")) runVirshSync(uri, ["pool-define-as", name, "dir", "--target", dir], opts);
  else if (posix.normalize(parsePoolXml(have).targetPath ?? "") !== posix.normalize(dir))
    throw new VolumeError("a pool of the name this provider would give the directory exists for another directory", {
      path: name,
      value: parsePoolXml(have).targetPath ?? "",
      fix: `define a pool for ${dir} yourself: virsh -c ${uri} pool-define-as NAME dir --target ${dir} && virsh -c ${uri} pool-start NAME`,
    });
  const info = runVirshSync(uri, ["pool-info", "--pool", name], opts);
  if (!/^State:\s+running$/m.test(info)) runVirshSync(uri, ["pool-start", "--pool", name], opts);
  runVirshSync(uri, ["pool-autostart", "--pool", name], opts);
  return name;
}

/**
 * The paths of volumes named by pool and volume (`virsh vol-path`), in one virsh process; key
 * `POOL\nVOLUME`. A volume that is not found is absent. Throws a {@link VirshError} when the
 * connection fails.
 */
export function volumePathsSync(
  uri: string,
  refs: readonly { readonly pool: string; readonly volume: string }[],
  opts: VirshRunOptions = {},
): Map<string, string> {
  const out = new Map<string, string>();
  if (refs.length === 0) return out;
  const r = batchSync(
    uri,
    refs.flatMap((v, i) => [
      ["echo", `${MARK}r${i}@@`],
      ["vol-path", "--pool", v.pool, "--vol", v.volume],
    ]),
    opts,
  );
  refs.forEach((v, i) => {
    const p = r.get(`r${i}`)?.trim();
    if (p && posix.isAbsolute(p)) out.set(`${v.pool}\n${v.volume}`, p);
  });
  return out;
}
