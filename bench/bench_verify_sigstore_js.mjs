// The peer of bench_verify.c: @sigstore/verify on the same sigstore-conformance
// cases, offline, with the same trusted roots and identity policy. Each timed
// iteration parses the bundle JSON (JSON.parse + bundleFromJSON), builds the
// signed entity over the artifact and verifies it; the trust material is built
// once, outside the loop, as bench_verify.c loads its trusted root once.
//
//   node bench_verify_sigstore_js.mjs NODE_PREFIX CONFORMANCE_DIR SECONDS_PER_ROW CASE=KIND...
//
// NODE_PREFIX is the folder npm installed @sigstore/verify, @sigstore/bundle
// and @sigstore/protobuf-specs into. Output lines match bench_verify.c's.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [prefix, dir, secsText, ...specs] = process.argv.slice(2);
const secs = Number(secsText);
if (!prefix || !dir || !(secs > 0) || specs.length === 0) {
  console.error('usage: bench_verify_sigstore_js.mjs NODE_PREFIX CONFORMANCE_DIR SECONDS CASE=KIND...');
  process.exit(2);
}
const require = createRequire(join(prefix, 'package.json'));
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')).cases;

function stats(samples) {
  samples.sort((a, b) => a - b);
  const n = samples.length;
  const median = n % 2 ? samples[(n - 1) / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  const p99 = samples[Math.min(Math.floor(n * 0.99), n - 1)];
  const mean = samples.reduce((s, x) => s + x, 0) / n;
  return { median, p99, mean };
}

for (const spec of specs) {
  const [name, kind] = spec.split('=');
  const c = cases.find((x) => x.name === name);
  if (!c || c.expect !== 'pass') {
    console.error(`bench_verify_sigstore_js: ${name} is not a passing case of cases.json`);
    process.exit(2);
  }
  const bundleText = readFileSync(join(dir, c.bundle), 'utf8');
  const artifact = readFileSync(join(dir, c.artifact));
  const root = TrustedRoot.fromJSON(JSON.parse(readFileSync(join(dir, c.trusted_root), 'utf8')));
  let policy;
  let keys;
  if (c.key) {
    // The caller's key, whatever the bundle's hint; parsed per verification, as
    // @sigstore/verify's own key locator does (and as meshward parses the PEM).
    const pem = readFileSync(join(dir, c.key));
    keys = () => ({ publicKey: createPublicKey(pem), validFor: () => true });
  } else {
    policy = {
      subjectAlternativeName: c.certificate_identity,
      extensions: { issuer: c.certificate_oidc_issuer },
    };
  }
  const verifier = new Verifier(toTrustMaterial(root, keys));
  const once = () => {
    const bundle = bundleFromJSON(JSON.parse(bundleText));
    verifier.verify(toSignedEntity(bundle, artifact), policy);
  };
  for (let i = 0; i < 20; i++) once();
  const samples = [];
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(secs * 1e9));
  while (samples.length < 50 || process.hrtime.bigint() - start < budget) {
    const t0 = process.hrtime.bigint();
    once();
    samples.push(Number(process.hrtime.bigint() - t0));
  }
  const s = stats(samples);
  console.log(
    `RESULT impl=sigstore-js kind=${kind} case=${name} iters=${samples.length} ` +
      `median_us=${(s.median / 1e3).toFixed(1)} p99_us=${(s.p99 / 1e3).toFixed(1)} ` +
      `mean_us=${(s.mean / 1e3).toFixed(1)}`,
  );
}
const ru = process.resourceUsage();
const mu = process.memoryUsage();
console.log(
  `RSS impl=sigstore-js vmhwm_kib=${ru.maxRSS} rss_now_kib=${Math.round(mu.rss / 1024)} ` +
    `heap_used_kib=${Math.round(mu.heapUsed / 1024)}`,
);
