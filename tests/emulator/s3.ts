/**
 * A real S3-compatible server on loopback for backup tests: s3rver 3.7.1 (npm) on an
 * ephemeral 127.0.0.1 port, its data in a temp dir removed on close. Dokploy's rclone
 * talks to it as to any "Other" provider (path style, the bucket made here).
 *
 * s3rver's own listing drops a "folder" that holds no object directly (its walk stops one
 * level too early), so `rclone lsjson` of the bucket root would miss
 * `<app>_machine/` when every backup sits under a prefix; the listing here groups a full
 * listing by the delimiter itself, as S3 does. `rootAsS3rver` keeps s3rver's own answer for
 * the bucket's root (no folders at all): a test that passes then does not depend on a root
 * listing, which only real S3 answers fully.
 */
import S3rver from "s3rver";

export interface S3Server {
  /** e.g. "http://127.0.0.1:41234": a destination's `endpoint`. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** The first bucket. */
  bucket: string;
  /** Keys (sorted) of the objects in `bucket` whose key starts with `prefix`. */
  objects(prefix?: string, bucket?: string): Promise<string[]>;
  /** The bytes of one object (throws when there is none). */
  read(key: string, bucket?: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** s3rver accepts any credentials; these are its documented defaults. */
const ACCESS_KEY = "S3RVER";
const SECRET_KEY = "S3RVER";
const OBJECT_SUFFIX = "._S3rver_object";

interface StoreLike {
  listObjects(
    bucket: string,
    options: { delimiter?: string; startAfter?: string; prefix?: string; maxKeys?: number },
  ): Promise<{ objects: { key: string }[]; commonPrefixes: string[]; isTruncated: boolean }>;
}

export async function startS3(
  opts: { buckets?: string[]; rootAsS3rver?: boolean } = {},
): Promise<S3Server> {
  const buckets = opts.buckets?.length ? opts.buckets : ["backups"];
  const directory = await Deno.makeTempDir({ prefix: "dokploy-emulator-s3-" });
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  fixListing((server as unknown as { store: StoreLike }).store, opts.rootAsS3rver ?? false);
  const { port } = await server.run() as { port: number };
  let closing: Promise<void> | undefined;

  const objects = async (prefix = "", bucket = buckets[0]) => {
    const keys: string[] = [];
    const root = `${directory}/${bucket}`;
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        const path = `${dir}/${e.name}`;
        if (e.isDirectory) await walk(path);
        else if (e.name.endsWith(OBJECT_SUFFIX)) {
          keys.push(path.slice(root.length + 1, -OBJECT_SUFFIX.length));
        }
      }
    };
    await walk(root).catch(() => {});
    return keys.filter((k) => k.startsWith(prefix)).sort();
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: ACCESS_KEY,
    secretKey: SECRET_KEY,
    bucket: buckets[0],
    objects,
    read: (key, bucket = buckets[0]) =>
      Deno.readFile(`${directory}/${bucket}/${key}${OBJECT_SUFFIX}`),
    close: () =>
      closing ??= (async () => {
        await server.close();
        await Deno.remove(directory, { recursive: true }).catch(() => {});
      })(),
  };
}

/** ListObjects with a delimiter, computed from the full listing under the prefix. */
function fixListing(store: StoreLike, rootAsS3rver: boolean) {
  const list = store.listObjects.bind(store);
  store.listObjects = async (bucket, options) => {
    const { delimiter = "", prefix = "", maxKeys = Infinity } = options;
    if (!delimiter || (rootAsS3rver && !prefix)) return list(bucket, options);
    const all = await list(bucket, { ...options, delimiter: "", maxKeys: Infinity });
    const commonPrefixes = new Set<string>();
    const objects: typeof all.objects = [];
    let isTruncated = false;
    for (const o of all.objects) {
      const idx = o.key.slice(prefix.length).indexOf(delimiter);
      if (idx !== -1) commonPrefixes.add(o.key.slice(0, prefix.length + idx + delimiter.length));
      else if (objects.length < maxKeys) objects.push(o);
      else isTruncated = true;
    }
    return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated };
  };
}
