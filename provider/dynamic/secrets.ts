/**
 * The provider's secrets boundary. The dynamic-provider host tells the engine it does not accept
 * secrets, so the provider sees plaintext; what it returns is stored as given. The engine reads
 * check inputs and create/read/update outputs keeping secrets, so a value wrapped in Pulumi's
 * secret sentinel (`{ [SECRET_SIG_KEY]: SECRET_SIG, value }`) is stored encrypted and shown as
 * `[secret]`. {@link withSecrets} wraps a provider so that every key that can carry domain XML
 * ({@link XML_KEYS}) is such a secret whenever that XML holds security info (a graphics password),
 * including the properties of a half-made domain recorded by a failed create, and so that error
 * messages and check failures never quote a password.
 *
 * "When present", not "always": a domain without security info keeps its XML readable in
 * `pulumi preview --diff` and in the CI preview report.
 */
import { scrubSecurityInfo, xmlHasSecurityInfo, xmlSecurityInfoValues } from "../xml/security";

/** The key marking a special value on Pulumi's wire (`specialSigKey` of `@pulumi/pulumi/runtime/rpc`). */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
/** The signature of a secret value (`specialSecretSig` of `@pulumi/pulumi/runtime/rpc`). */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value wrapped as a Pulumi secret, as it travels between provider and engine. */
export interface SecretValue<T = unknown> {
  readonly [SECRET_SIG_KEY]: typeof SECRET_SIG;
  readonly value: T;
}

/** The keys of the Domain's inputs and outputs that can carry domain XML. */
export const XML_KEYS: readonly string[] = ["xml", "desiredXml"];

/** True for a value wrapped as a secret. */
export function isSecret(v: unknown): v is SecretValue {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** Wraps a value as a secret (a secret stays as it is). */
export function secret<T>(v: T): SecretValue<T> {
  return (isSecret(v) ? v : { [SECRET_SIG_KEY]: SECRET_SIG, value: v }) as SecretValue<T>;
}

/** The value with every secret wrapper removed, deeply. */
export function reveal<T>(v: T): T {
  if (isSecret(v)) return reveal(v.value) as T;
  if (Array.isArray(v)) return v.map(reveal) as T;
  if (typeof v === "object" && v !== null) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = reveal(x);
    return o as T;
  }
  return v;
}

/** The XML strings of an object at {@link XML_KEYS}. */
function xmlStrings(o: unknown): string[] {
  if (typeof o !== "object" || o === null) return [];
  return XML_KEYS.map((k) => reveal((o as Record<string, unknown>)[k])).filter(
    (x): x is string => typeof x === "string",
  );
}

/**
 * A copy of `o` whose {@link XML_KEYS} are secrets when any of them holds security info (all of
 * them: the actual XML and the desired one go together). Anything else is returned as it is.
 */
export function markSecretXml<T>(o: T): T {
  if (typeof o !== "object" || o === null || !xmlStrings(o).some(xmlHasSecurityInfo)) return o;
  const r: Record<string, unknown> = { ...(o as Record<string, unknown>) };
  for (const k of XML_KEYS) if (typeof reveal(r[k]) === "string") r[k] = secret(reveal(r[k]));
  return r as T;
}

/** The security-info values of every XML string among some call arguments, for scrubbing messages. */
function secretsOf(args: unknown[]): string[] {
  return args.flatMap(xmlStrings).flatMap(xmlSecurityInfoValues);
}

/** Scrubs an error in place (message, stack, reasons) and wraps the XML of its properties. */
function scrubError(e: unknown, values: string[]): unknown {
  if (typeof e !== "object" || e === null) return e;
  const err = e as { message?: unknown; stack?: unknown; reasons?: unknown; properties?: unknown };
  // Always: the pattern pass covers values no argument holds (a password changed behind our back).
  if (typeof err.message === "string") err.message = scrubSecurityInfo(err.message, values);
  if (typeof err.stack === "string") err.stack = scrubSecurityInfo(err.stack, values);
  if (Array.isArray(err.reasons))
    err.reasons = err.reasons.map((r: unknown) => (typeof r === "string" ? scrubSecurityInfo(r, values) : r));
  if (typeof err.properties === "object" && err.properties !== null) err.properties = markSecretXml(err.properties);
  return e;
}

/** A check failure. */
interface Failure {
  property: string;
  reason: string;
}

/** The provider methods the boundary wraps (DynamicProvider's names). */
export interface DomainProviderMethods {
  check(
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ inputs: Record<string, unknown>; failures: Failure[] }>;
  diff(
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }>;
  create(inputs: Record<string, unknown>): Promise<{ id: string; outs: Record<string, unknown> }>;
  read(id: string, props: Record<string, unknown>): Promise<{ id: string; props: Record<string, unknown> }>;
  update(
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ outs: Record<string, unknown> }>;
  delete(id: string, props: Record<string, unknown>): Promise<void>;
}

/**
 * Wraps a provider: arguments are revealed (the engine sends plaintext, a test may send what it
 * got back), XML holding security info is returned as a secret, and errors and check failures
 * have every password of the arguments replaced by the redaction marker.
 */
export function withSecrets(p: DomainProviderMethods): DomainProviderMethods {
  const guard = async <R>(args: unknown[], fn: () => Promise<R>): Promise<R> => {
    try {
      return await fn();
    } catch (e) {
      throw scrubError(e, secretsOf(args));
    }
  };
  return {
    check: (olds, news) => {
      const [o, n] = [reveal(olds), reveal(news)];
      return guard([o, n], async () => {
        const r = await p.check(o, n);
        const values = secretsOf([o, n]);
        return {
          inputs: markSecretXml(r.inputs),
          failures: r.failures.map((f) => ({ ...f, reason: scrubSecurityInfo(f.reason, values) })),
        };
      });
    },
    diff: (id, olds, news) => {
      const [o, n] = [reveal(olds), reveal(news)];
      return guard([o, n], () => p.diff(id, o, n));
    },
    create: (inputs) => {
      const i = reveal(inputs);
      return guard([i], async () => {
        const r = await p.create(i);
        return { id: r.id, outs: markSecretXml(r.outs) };
      });
    },
    read: (id, props) => {
      const pr = reveal(props);
      return guard([pr], async () => {
        const r = await p.read(id, pr);
        return { id: r.id, props: markSecretXml(r.props) };
      });
    },
    update: (id, olds, news) => {
      const [o, n] = [reveal(olds), reveal(news)];
      return guard([o, n], async () => {
        const r = await p.update(id, o, n);
        return { outs: markSecretXml(r.outs) };
      });
    },
    delete: (id, props) => {
      const pr = reveal(props);
      return guard([pr], () => p.delete(id, pr));
    },
  };
}
