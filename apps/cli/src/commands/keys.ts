import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { ConfigError, createPrivateKeyFile, loadConfig, readPrivateKeyFile } from '@shelfsight/common';
import { keyIdOf, parsePublicKey, parseTrustedKeys, publicKeyBase64, signKeyList, SignedKeyListSchema, verifyKeyList } from '@shelfsight/contracts';
import { hubRequest } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';
import { expiryFrom, KEY_SPEC } from './key';

/** The root key's file in the folder `shelf keys root init` makes. */
export const ROOT_KEY_FILE = 'root-key.pem';
/** The root public key beside it: the file devices are provisioned with (agent --trusted-keys). */
export const ROOT_PUBLIC_FILE = 'root.pub';

/** `<keyid> <base64 SPKI DER>`: a line of a trusted-keys file. */
const keyLine = (key: KeyObject) => `${keyIdOf(key)} ${publicKeyBase64(key)}`;

/**
 * A release public key as given to `keys list sign --keys`: a private key file (PEM, its
 * public half is taken), a file of `<keyid> <key>` lines, or one base64 public key.
 */
export function releaseKeysFrom(arg: string): KeyObject[] {
  if (existsSync(arg)) {
    const text = readFileSync(arg, 'utf8');
    if (text.includes('PRIVATE KEY')) return [readPrivateKeyFile(arg, `--keys ${arg}`)];
    if (text.includes('BEGIN PUBLIC KEY')) return [parsePublicKey(text)];
    return [...parseTrustedKeys(text, arg).values()];
  }
  try {
    return [parsePublicKey(arg)];
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  --keys ${arg}: not a file nor a public key (${(err as Error).message})`);
  }
}

const PUBLISH_SPEC = KEY_SPEC;

/**
 * `shelf keys`: the rollout trust chain. An offline root (made once, kept off the hub) signs
 * versioned, expiring lists of release keys; the hub signs manifests and commands with a
 * release key; devices are provisioned with the root public key only.
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('Rollout keys: an offline root, release keys, and the root-signed release key list devices trust');

  const root = keys.command('root').description('The offline root key devices are provisioned with');
  root
    .command('init')
    .description(`Create a root key pair in --dir (${ROOT_KEY_FILE}, mode 0600; ${ROOT_PUBLIC_FILE}); prints the root public key line for device provisioning (agent --trusted-keys)`)
    .requiredOption('--dir <dir>', 'folder for the root key (on the admin\u2019s machine, never the hub\u2019s)')
    .action((opts: { dir: string }) => {
      const file = path.join(opts.dir, ROOT_KEY_FILE);
      if (existsSync(file)) throw new ConfigError(`invalid configuration:\n  --dir: ${file} exists; a root is made once (rotating the root means re-provisioning devices)`);
      const key = createPrivateKeyFile(file);
      writeFileSync(path.join(opts.dir, ROOT_PUBLIC_FILE), `${keyLine(key)}\n`, { mode: 0o644 });
      process.stderr.write(`root key written to ${file} (mode 0600): keep it offline. Devices trust it through ${path.join(opts.dir, ROOT_PUBLIC_FILE)} (agent --trusted-keys):\n`);
      process.stdout.write(`${keyLine(key)}\n`);
    });

  const release = keys.command('release').description('Release keys: what the hub signs manifests and commands with');
  release
    .command('new')
    .description('Create a release key (PKCS8 PEM, mode 0600) for the hub (ROLLOUT_RELEASE_KEY_FILE); prints its public key line for `keys list sign --keys`')
    .requiredOption('--out <file>', 'the release key file to create')
    .action((opts: { out: string }) => {
      const key = createPrivateKeyFile(opts.out);
      process.stderr.write(`release key written to ${opts.out} (mode 0600); give it to the hub as ROLLOUT_RELEASE_KEY_FILE and list it with \`shelf keys list sign\`\n`);
      process.stdout.write(`${keyLine(key)}\n`);
    });

  const list = keys.command('list').description('The root-signed release key list');
  list
    .command('sign')
    .description('Sign a release key list with the root: devices take it only if its version is above the one they hold; a key left out is revoked')
    .requiredOption('--root <dir>', `the folder of \`keys root init\` (its ${ROOT_KEY_FILE})`)
    // Not --version: that is the program's own flag.
    .requiredOption('--list-version <n>', 'the list version: above every list published before')
    .requiredOption('--keys <keys...>', 'release keys: key files (their public half is taken), files of "<keyid> <key>" lines, or base64 public keys')
    .option('--expires <when>', 'when devices stop trusting the list: a duration (365d, 12h) or an ISO date-time', '365d')
    .option('--out <file>', 'write the signed list here (the hub\u2019s ROLLOUT_KEY_LIST_FILE, or `keys list publish`); unset = stdout')
    .action((opts: { root: string; listVersion: string; keys: string[]; expires: string; out?: string }) => {
      const version = Number(opts.listVersion);
      if (!Number.isSafeInteger(version) || version < 1) throw new ConfigError(`invalid configuration:\n  --list-version=${JSON.stringify(opts.listVersion)}: a positive integer`);
      const rootKey = readPrivateKeyFile(path.join(opts.root, ROOT_KEY_FILE), '--root');
      const releaseKeys = opts.keys.flatMap(releaseKeysFrom);
      const signed = signKeyList({ version, issuedAt: new Date().toISOString(), expiresAt: expiryFrom(opts.expires), keys: releaseKeys.map((publicKey) => ({ publicKey })) }, rootKey);
      const text = `${JSON.stringify(signed, null, 2)}\n`;
      if (opts.out) writeFileSync(opts.out, text);
      else process.stdout.write(text);
      process.stderr.write(`key list v${version} signed by root ${keyIdOf(rootKey)}: ${releaseKeys.map((k) => keyIdOf(k)).join(', ')}; expires ${signed.list.expiresAt}\n`);
    });

  const publish = list
    .command('publish <file>')
    .description('Publish a signed key list on the hub (POST /rollouts/key-list): devices take it at once (retained MQTT) and refuse manifests of keys it no longer names');
  addConfigOptions(publish, PUBLISH_SPEC);
  publish.action(async (file: string, opts: Record<string, unknown>) => {
    const c = loadConfig(PUBLISH_SPEC, flagsFrom(PUBLISH_SPEC, opts));
    const parsed = SignedKeyListSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) throw new ConfigError(`invalid configuration:\n  ${file}: not a signed key list (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    const res = await hubRequest({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'POST', '/rollouts/key-list', { data: JSON.stringify(parsed.data), contentType: 'application/json' });
    const body = (await res.json()) as { list: { version: number }; signsWithListedKey: boolean };
    process.stdout.write(`published key list v${body.list.version}${body.signsWithListedKey ? '' : ' (warning: it does not name the key the hub signs with; devices will refuse its offers until the hub gets a listed key)'}\n`);
  });

  list
    .command('show <file>')
    .description('Check a signed key list against root public keys (a trusted-keys file) and print it')
    .requiredOption('--trusted-keys <file>', 'the root public keys (e.g. root.pub)')
    .action((file: string, opts: { trustedKeys: string }) => {
      const v = verifyKeyList(JSON.parse(readFileSync(file, 'utf8')), parseTrustedKeys(readFileSync(opts.trustedKeys, 'utf8'), opts.trustedKeys), new Date());
      if (!v.ok) throw new ConfigError(`${file}: ${v.reason}: ${v.message}`);
      process.stdout.write(`key list v${v.list.version}, root ${v.list.root.keyId}, expires ${v.list.expiresAt}\n${v.list.keys.map((k) => `${k.keyId} ${k.publicKey}`).join('\n')}\n`);
    });
}
