/**
 * Renders the Swagger documents Asterisk serves under `/ari/api-docs/`: `resources.json` (the
 * resource listing) and `<resource>.json` (API declarations), from {@link RESOURCES}. Like Asterisk
 * (`ast_ari_get_docs`), `basePath` is rewritten to `http://<Host header>/ari`.
 */
import { RESOURCES, type ModelDecl, type ResourceDecl } from './declarations.ts';

/** `apiVersion` of Asterisk 22's ARI. */
export const ARI_API_VERSION = '10.0.0';

/** `resources.json` for a request whose Host header is `host` (omit `basePath` without a Host). */
export function resourceListing(host: string | undefined): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    apiVersion: ARI_API_VERSION,
    swaggerVersion: '1.1',
  };
  if (host) doc.basePath = `http://${host}/ari`;
  doc.apis = RESOURCES.map((r) => ({
    path: `/api-docs/${r.name}.{format}`,
    description: r.description,
  }));
  return doc;
}

function renderModels(models: readonly ModelDecl[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of models) out[m.id] = m;
  return out;
}

function render(resource: ResourceDecl, host: string | undefined): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    apiVersion: '2.0.0',
    swaggerVersion: resource.swaggerVersion,
  };
  if (host) doc.basePath = `http://${host}/ari`;
  doc.resourcePath = `/api-docs/${resource.name}.{format}`;
  doc.apis = resource.apis;
  doc.models = renderModels(resource.models);
  return doc;
}

/** The API declaration `<name>.json`, or undefined for an unknown resource. */
export function apiDeclaration(
  name: string,
  host: string | undefined,
): Record<string, unknown> | undefined {
  const resource = RESOURCES.find((r) => r.name === name);
  return resource ? render(resource, host) : undefined;
}
