/**
 * The provider's options: one typed model that `lib/config.ts` validates against,
 * `scripts/build.ts` renders into provider.yaml and the README's option table is
 * checked against. Add an option here and nowhere else.
 */

/** DevPod option types (devpod-protocol.md §3.3). */
export type OptionType = "string" | "number" | "boolean" | "duration" | "multiline";

export interface OptionSpec {
  /** DevPod option name, `[A-Z0-9_]+`. */
  name: string;
  description: string;
  displayName?: string;
  type?: OptionType;
  default?: string;
  required?: boolean;
  /** Shown as `********` by DevPod. */
  password?: boolean;
  /** Resolved at provider level only, so rotation reaches every machine. */
  global?: boolean;
  /** Resolved per machine when it is created (stored in machine.json). */
  local?: boolean;
  /** May be edited after a machine exists. */
  mutable?: boolean;
  enum?: { value: string; displayName: string }[];
  suggestions?: string[];
  validationPattern?: string;
  validationMessage?: string;
  hidden?: boolean;
  /** optionGroups name used by the DevPod Desktop UI. */
  group: OptionGroupName;
}

export type OptionGroupName = "Dokploy" | "Machine" | "Backups" | "Access" | "Advanced";

export const OPTION_GROUPS: { name: OptionGroupName; defaultVisible: boolean }[] = [
  { name: "Dokploy", defaultVisible: true },
  { name: "Machine", defaultVisible: true },
  { name: "Backups", defaultVisible: false },
  { name: "Access", defaultVisible: false },
  { name: "Advanced", defaultVisible: false },
];

/** Sizing presets: what `MACHINE_TYPE` means in CPUs and memory. */
export const MACHINE_TYPES = {
  small: { cpus: 2, memoryMiB: 4096, displayName: "Small (2 CPU, 4 GiB)" },
  medium: { cpus: 4, memoryMiB: 8192, displayName: "Medium (4 CPU, 8 GiB)" },
  large: { cpus: 8, memoryMiB: 16384, displayName: "Large (8 CPU, 16 GiB)" },
} as const;
export type MachineType = keyof typeof MACHINE_TYPES;

/** The image used when no prebuilt machine image is pinned by the release. */
export const FALLBACK_MACHINE_IMAGE = "debian:bookworm-slim";
export const DEFAULT_AGENT_PATH = "/home/devpod/.devpod/devpod";
export const DEFAULT_SSH_PORT_RANGE = "32200-32999";
/** Docker's own registry (distribution 2.8), pinned: proxy mode and the layout we rely on. */
export const DEFAULT_IMAGE_CACHE_IMAGE = "registry:2.8.3";
export const DEFAULT_IMAGE_CACHE_UPSTREAM = "https://registry-1.docker.io";
export const DEFAULT_PREBUILD_PROXY_IMAGE = "nginx:1.27-alpine";
export const DEFAULT_AGENT_CACHE_UPSTREAM = "https://github.com";

export const OPTIONS: readonly OptionSpec[] = [
  {
    name: "DOKPLOY_SERVER_URL",
    group: "Dokploy",
    displayName: "Dokploy server URL",
    description: "Base URL of your Dokploy server, e.g. https://dokploy.example.com",
    required: true,
    global: true,
    validationPattern: "^https?://[^\\s/]+.*$",
    validationMessage: "must be an http(s) URL such as https://dokploy.example.com",
  },
  {
    name: "DOKPLOY_API_TOKEN",
    group: "Dokploy",
    displayName: "Dokploy API key",
    description:
      "API key from Dokploy (Settings > Profile > API/CLI). Sent only as the x-api-key header to the Dokploy server, never to a machine.",
    required: true,
    password: true,
    global: true,
  },
  {
    name: "DOKPLOY_PROJECT_NAME",
    group: "Dokploy",
    displayName: "Dokploy project",
    description:
      "Dokploy project that holds the machines (created when missing). `{user}` is replaced by the API key's user (the email's local part): `devpod-{user}` gives each teammate a project of their own.",
    default: "devpod-workspaces",
  },
  {
    name: "DOKPLOY_SERVER_ID",
    group: "Dokploy",
    displayName: "Dokploy server",
    description:
      "Where machines run: a Dokploy remote server's id or name, `local` (the Dokploy host itself, also when empty) or `auto` (at each create, the active deploy server with the most headroom for the machine's size). A machine stays on its server for life.",
    default: "",
    suggestions: ["auto", "local"],
  },
  {
    name: "MACHINE_TYPE",
    group: "Machine",
    displayName: "Machine size",
    description: "Size preset of the machine: CPU and memory limits.",
    default: "small",
    enum: Object.entries(MACHINE_TYPES).map(([value, t]) => ({
      value,
      displayName: t.displayName,
    })),
  },
  {
    name: "MACHINE_CPUS",
    group: "Machine",
    displayName: "CPUs (override)",
    description: "CPU limit overriding the MACHINE_TYPE preset (e.g. 3 or 1.5); empty keeps it.",
    default: "",
    validationPattern: "^$|^[0-9]+(\\.[0-9]+)?$",
    validationMessage: "must be a positive number of CPUs such as 2 or 1.5",
  },
  {
    name: "MACHINE_MEMORY",
    group: "Machine",
    displayName: "Memory (override)",
    description:
      "Memory limit overriding the MACHINE_TYPE preset (e.g. 6g, 3072m); empty keeps it.",
    default: "",
    validationPattern: "^$|^[0-9]+[mMgG]$",
    validationMessage: "must be a size such as 6g or 3072m",
  },
  {
    name: "MACHINE_IMAGE",
    group: "Machine",
    displayName: "Machine image",
    description:
      "Container image of the machine. The prebuilt image boots in seconds; any Debian/Ubuntu, Alpine or Fedora image works through the bootstrap, which installs what is missing.",
    default: FALLBACK_MACHINE_IMAGE,
  },
  {
    name: "DOCKER_MODE",
    group: "Machine",
    displayName: "Docker in the machine",
    description:
      "dind runs a private Docker engine in a privileged machine (needed for devcontainers); none runs unprivileged without Docker.",
    default: "dind",
    enum: [
      { value: "dind", displayName: "Docker-in-Docker (privileged)" },
      { value: "none", displayName: "No Docker (unprivileged)" },
    ],
  },
  {
    name: "IMAGE_CACHE",
    group: "Machine",
    displayName: "Shared image cache",
    description:
      "Run one pull-through Docker Hub cache per server (a registry in the provider's project, on a private network, never published) as every dind machine's registry mirror: the second workspace pulls nothing from the internet. If the cache is down, pulls go to Docker Hub as before.",
    type: "boolean",
    default: "true",
  },
  {
    name: "PREBUILDS",
    group: "Machine",
    displayName: "Prebuilds on the server",
    description:
      "Run one prebuild registry per server beside the image cache (needs IMAGE_CACHE; never published): every dind machine reaches it as localhost:5151 and pushes the images DevPod builds for --prebuild-repository localhost:5151/prebuilds, so the next workspace of the same repo and config on that server starts without building. A pushed tag is never overwritten.",
    type: "boolean",
    default: "true",
  },
  {
    name: "INACTIVITY_TIMEOUT",
    group: "Machine",
    displayName: "Idle auto-stop",
    description:
      "Stop the machine after this long without any SSH session (e.g. 30m, 2h); 0 turns auto-stop off.",
    type: "duration",
    default: "30m",
  },
  {
    name: "KEEP_VOLUMES",
    group: "Machine",
    displayName: "Keep volumes on delete",
    description: "Keep the machine's volumes (home, Docker data) when it is deleted.",
    type: "boolean",
    default: "false",
  },
  {
    name: "BACKUP_DESTINATION",
    group: "Backups",
    displayName: "Backup destination",
    description:
      "A Dokploy S3 destination (Settings > S3 Destinations), by name or id: Dokploy then backs each machine's home up there on BACKUP_SCHEDULE, consistently whatever the machine's state. Empty: no backups.",
    default: "",
    global: true,
  },
  {
    name: "BACKUP_SCHEDULE",
    group: "Backups",
    displayName: "Backup schedule",
    description:
      "When Dokploy backs a machine up: a cron expression in the server's time (e.g. 30 2 * * *), or nightly (each machine at its own minute between 02:00 and 04:59).",
    default: "nightly",
    global: true,
  },
  {
    name: "BACKUP_KEEP",
    group: "Backups",
    displayName: "Backups kept",
    description:
      "How many backups of each machine Dokploy keeps in the bucket (older ones are deleted).",
    type: "number",
    default: "7",
    global: true,
    validationPattern: "^[0-9]+$",
    validationMessage: "must be a whole number of backups such as 7",
  },
  {
    name: "SSH_HOST",
    group: "Access",
    displayName: "SSH host",
    description:
      "Host name DevPod dials for SSH; empty uses the remote server's IP or the Dokploy URL's host.",
    default: "",
  },
  {
    name: "SSH_PORT_RANGE",
    group: "Access",
    displayName: "SSH port range",
    description:
      "Host ports the provider may publish machines' SSH on (open them in your firewall).",
    default: DEFAULT_SSH_PORT_RANGE,
    validationPattern: "^[0-9]{1,5}-[0-9]{1,5}$",
    validationMessage: "must look like 32200-32999",
  },
  {
    name: "SSH_REUSE_CONNECTIONS",
    group: "Access",
    displayName: "Reuse SSH connections",
    description:
      "Share one SSH connection between DevPod's tunnels to a machine (OpenSSH ControlMaster; not on Windows). Much faster; kept open 15 s after the last tunnel.",
    type: "boolean",
    default: "true",
  },
  {
    name: "PREVIEW_DOMAIN",
    group: "Access",
    displayName: "Preview domain",
    description:
      "Wildcard domain for preview URLs (devpod-provider-dokploy preview <machine> <port>), e.g. *.dev.example.com with its DNS pointing at the server: each URL is <machine>-<port>.dev.example.com over HTTPS (Let's Encrypt). Empty: Dokploy generates an sslip.io name on the server's IP.",
    default: "",
    global: true,
    validationPattern: "^(\\*\\.)?([a-zA-Z0-9-]+\\.)*[a-zA-Z0-9-]+$|^$",
    validationMessage: "must be a domain such as *.dev.example.com",
  },
  {
    name: "DOKPLOY_NETWORK",
    group: "Advanced",
    displayName: "Join dokploy-network",
    description:
      "Attach machines to dokploy-network so they reach other Dokploy services by name (off: each machine has its own network).",
    type: "boolean",
    default: "false",
  },
  {
    name: "IMAGE_CACHE_IMAGE",
    group: "Advanced",
    displayName: "Image cache image",
    description:
      "Registry image the shared image cache runs (distribution v2 with proxy support; IMAGE_CACHE).",
    default: DEFAULT_IMAGE_CACHE_IMAGE,
  },
  {
    name: "IMAGE_CACHE_UPSTREAM",
    group: "Advanced",
    displayName: "Image cache upstream",
    description:
      "Registry the image cache pulls through from: Docker Hub, or a Docker Hub mirror of your own (http(s) URL).",
    default: DEFAULT_IMAGE_CACHE_UPSTREAM,
    validationPattern: "^https?://[^\\s/]+/?$",
    validationMessage: "must be an http(s) URL of a registry such as https://registry-1.docker.io",
  },
  {
    name: "PREBUILD_PROXY_IMAGE",
    group: "Advanced",
    displayName: "Prebuild registry front image",
    description:
      "nginx image of the prebuild registry's front (PREBUILDS), which refuses to overwrite a pushed tag and runs unprivileged, and of the server's agent cache (IMAGE_CACHE; it also needs curl and sha256sum, as nginx:alpine has).",
    default: DEFAULT_PREBUILD_PROXY_IMAGE,
  },
  {
    name: "AGENT_CACHE_UPSTREAM",
    group: "Advanced",
    displayName: "Agent cache upstream",
    description:
      "Where the server's agent cache (IMAGE_CACHE, AGENT_URL empty) fetches DevPod's agent releases once per server: GitHub, or a mirror with GitHub's paths (<owner>/<repo>/releases/download/<version>/<file>).",
    default: DEFAULT_AGENT_CACHE_UPSTREAM,
    validationPattern: "^https?://[^\\s]+$",
    validationMessage: "must be an http(s) URL such as https://github.com",
  },
  {
    name: "AGENT_PATH",
    group: "Advanced",
    displayName: "Agent path",
    description:
      "Where the DevPod agent lives on the machine (on the home volume, so it survives restarts).",
    default: DEFAULT_AGENT_PATH,
  },
  {
    name: "AGENT_URL",
    group: "Advanced",
    displayName: "Agent download URL",
    description:
      "Base URL the machine downloads the DevPod agent from: https://… or, on an air-gapped machine, file:///dir (read with curl). Set, it wins and also turns agent telemetry off; empty: the server's agent cache serves the agent of the CLI in use (dind machines with IMAGE_CACHE), falling back to DevPod's default download.",
    default: "",
  },
  {
    name: "READY_TIMEOUT",
    group: "Advanced",
    displayName: "Ready timeout",
    description: "How long create/start wait for the machine to deploy and answer SSH.",
    type: "duration",
    default: "10m",
  },
  {
    name: "DOKPLOY_RETRY_WINDOW",
    group: "Advanced",
    displayName: "Dokploy retry window",
    description:
      "How long to keep retrying while Dokploy is unreachable or answers 502/503/504 (it restarts in ~20 s on upgrades and reboots); 0 fails on the first error.",
    type: "duration",
    default: "60s",
  },
];

export function optionByName(name: string): OptionSpec {
  const spec = OPTIONS.find((o) => o.name === name);
  if (!spec) throw new Error(`unknown option ${name}`);
  return spec;
}
