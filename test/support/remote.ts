/**
 * The 12.x lab as a remote host (scripts/lab.sh: an OpenSSH server chrooted with the 12.x
 * libvirtd, key-only on 127.0.0.1, libvirt's ssh transport) and its storage pool, whose
 * directory exists only inside the chroot. A test that needs it fails, never skips, when it is
 * missing: `npm run lab -- up` starts it.
 */
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { labEnv } from "./lab";

/** The ssh lab. */
export interface SshLab {
  /** `LAB_SSH_URI`: qemu+ssh://root@127.0.0.1:PORT/system?command=...&keyfile=...&no_tty=1&no_verify=0 */
  readonly uri: string;
  /** `LAB_NEW_POOL`: a dir pool of the 12.x lab. */
  readonly pool: string;
  /** `LAB_NEW_POOL_DIR`: its directory, a path inside the chroot only. */
  readonly poolDir: string;
  /** `LAB_CHROOT`: where the chroot is on this machine (for tests that play a user on the hypervisor). */
  readonly chroot: string;
}

function need(env: Record<string, string>, name: string): string {
  const v = env[name];
  if (v === undefined) throw new Error(`scripts/lab.sh env printed no ${name}; start the labs with: npm run lab -- up`);
  return v;
}

/** The ssh lab, checked to answer through ssh with its pool running; throws with how to start it otherwise. */
export async function requireSshLab(): Promise<SshLab> {
  const env = labEnv();
  const lab: SshLab = {
    uri: need(env, "LAB_SSH_URI"),
    pool: need(env, "LAB_NEW_POOL"),
    poolDir: need(env, "LAB_NEW_POOL_DIR"),
    chroot: need(env, "LAB_CHROOT"),
  };
  try {
    await runVirsh(lab.uri, ["version", "--daemon"], { timeoutMs: 30000 });
    const info = (await runVirsh(lab.uri, ["pool-info", "--pool", lab.pool], { timeoutMs: 30000 })).stdout;
    if (!/^State:\s+running$/m.test(info)) throw new Error(`pool ${lab.pool} is not running:\n${info}`);
  } catch (e) {
    throw new Error(
      `the ssh lab does not answer at ${lab.uri} with its pool ${lab.pool} running (${(e as Error).message}); start it with: npm run lab -- up`,
      { cause: e },
    );
  }
  return lab;
}

/** Where a path of the 12.x lab's file system is on this machine (only tests that play a user on the hypervisor use it). */
export function inChroot(lab: SshLab, p: string): string {
  return path.join(lab.chroot, p);
}
