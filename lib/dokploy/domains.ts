/**
 * Dokploy's domains of a compose service (dokploy-api.md §9 "domain"), typed. A compose
 * domain is only a row until the next deploy, when Dokploy writes its Traefik labels into
 * the service it names and puts that service on dokploy-network. Kept apart from api.ts:
 * only the preview commands and list/doctor load it.
 */
import { z } from "zod";
import { Domain, parse } from "./api.ts";
export type { Domain } from "./api.ts";
import { type DokployClient, isNotFound } from "./client.ts";

export const DomainList = z.array(Domain);

export interface ComposeDomainInput {
  composeId: string;
  serviceName: string;
  host: string;
  port: number;
  https: boolean;
  /** Dokploy's own middleware references, e.g. `<name>@docker` (a label of ours defines it). */
  middlewares: string[];
}

export class DomainApi {
  constructor(readonly client: DokployClient) {}

  async ofCompose(composeId: string): Promise<Domain[]> {
    const res = await this.client.query("domain.byComposeId", { composeId });
    return parse(DomainList, res ?? [], "domain.byComposeId");
  }

  /** Never retried: a lost answer may hide a created row (the caller looks again). */
  async create(input: ComposeDomainInput): Promise<Domain | null> {
    const res = await this.client.mutate<unknown>("domain.create", {
      host: input.host,
      path: "/",
      port: input.port,
      https: input.https,
      certificateType: input.https ? "letsencrypt" : "none",
      composeId: input.composeId,
      serviceName: input.serviceName,
      domainType: "compose",
      stripPath: false,
      middlewares: input.middlewares,
    });
    const r = Domain.safeParse(res);
    return r.success ? r.data : null;
  }

  /** Deletes the row; false when it was already gone. */
  async remove(domainId: string): Promise<boolean> {
    try {
      await this.client.mutate("domain.delete", { domainId }, { idempotent: true });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** `<appName[:40]>-<6 hex>-<server IP, dashed>.sslip.io`: a name that needs no DNS of yours. */
  async generate(appName: string, serverId: string | null): Promise<string> {
    const res = await this.client.mutate<unknown>("domain.generateDomain", {
      appName,
      ...(serverId ? { serverId } : {}),
    });
    return parse(z.string().min(1), res, "domain.generateDomain");
  }
}
