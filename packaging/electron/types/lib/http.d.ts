export type Query = Record<string, string | number | boolean | null | undefined | Array<string | number | boolean>>;
export type RequestOptions = {
    /**
     * sent as the JSON body (`Content-Type: application/json`)
     */
    json?: unknown;
    /**
     * raw body: `FormData`, `Blob`, `Buffer`, string
     */
    body?: BodyInit | undefined;
    headers?: Record<string, string> | undefined;
    /**
     * appended as the query string (arrays repeat the key)
     */
    query?: Record<string, string | number | boolean | (string | number | boolean)[] | null | undefined> | undefined;
    /**
     * aborting rejects with the signal's reason (an `AbortError`)
     */
    signal?: AbortSignal | undefined;
    /**
     * whole request incl. reading the body; default 30 s, 0 = none
     */
    timeoutMs?: number | undefined;
    /**
     * sent as `X-Request-ID` (default: a random UUID)
     */
    requestId?: string | undefined;
    /**
     * `auto` (default): JSON bodies parsed, `text/*` as string, 204 as null, else a Buffer;
     * `response`: the raw `Response` (the timeout then only covers the headers)
     */
    responseType?: "buffer" | "auto" | "text" | "json" | "response" | undefined;
};
export type Target = {
    /**
     * `http://127.0.0.1:<port>`
     */
    baseUrl: string;
    token: string;
};
/**
 * @typedef {Record<string, string|number|boolean|null|undefined|Array<string|number|boolean>>} Query
 */
/**
 * @typedef {object} RequestOptions
 * @property {unknown} [json]       sent as the JSON body (`Content-Type: application/json`)
 * @property {BodyInit} [body]      raw body: `FormData`, `Blob`, `Buffer`, string
 * @property {Record<string, string>} [headers]
 * @property {Query} [query]        appended as the query string (arrays repeat the key)
 * @property {AbortSignal} [signal] aborting rejects with the signal's reason (an `AbortError`)
 * @property {number} [timeoutMs]   whole request incl. reading the body; default 30 s, 0 = none
 * @property {string} [requestId]   sent as `X-Request-ID` (default: a random UUID)
 * @property {'auto'|'json'|'text'|'buffer'|'response'} [responseType]
 *   `auto` (default): JSON bodies parsed, `text/*` as string, 204 as null, else a Buffer;
 *   `response`: the raw `Response` (the timeout then only covers the headers)
 */
/**
 * @typedef {object} Target
 * @property {string} baseUrl  `http://127.0.0.1:<port>`
 * @property {string} token
 */
/**
 * @param {Target} target
 * @param {string} method
 * @param {string} path     starting with `/`, e.g. `/v1/status`
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
export function httpRequest(target: Target, method: string, path: string, options?: RequestOptions): Promise<any>;
/**
 * @param {Query|undefined} query
 * @returns {string}
 */
export function queryString(query: Query | undefined): string;
/**
 * Build the {@link SidecarError} for a non-2xx response.
 * @param {Response} res
 * @param {{method: string, path: string, requestId: string}} where
 * @returns {Promise<SidecarError>}
 */
export function errorFromResponse(res: Response, where: {
    method: string;
    path: string;
    requestId: string;
}): Promise<SidecarError>;
export const DEFAULT_TIMEOUT_MS: 30000;
import { SidecarError } from "./errors";
