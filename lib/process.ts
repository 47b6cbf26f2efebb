/**
 * Environment for child processes (ssh, ssh-keygen). DevPod passes every option,
 * the API token included, as environment variables; children get none of them.
 */
const PASSED = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "SYSTEMROOT",
  "SSH_AUTH_SOCK",
];

export function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASSED) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}
