export type RawEvent = {
    /**
     * the `event` field, `message` when absent
     */
    type: string;
    data: string;
    /**
     * the `id` field of this event, null when it had none
     */
    id: string | null;
    /**
     * the stream's last event id after this event
     */
    lastEventId: string;
};
/**
 * A Server-Sent Events parser following the WHATWG "event stream interpretation" rules:
 * lines end with CRLF, LF or CR (also when split across chunks), `:` starts a comment,
 * one leading space after the colon is dropped, `data` lines are joined with `\n`, an `id`
 * containing NUL is ignored, `retry` must be all digits, a blank line dispatches, and an
 * event without data is not dispatched. Pure: feed it text, get events back.
 */
/**
 * @typedef {object} RawEvent
 * @property {string} type          the `event` field, `message` when absent
 * @property {string} data
 * @property {string|null} id       the `id` field of this event, null when it had none
 * @property {string} lastEventId   the stream's last event id after this event
 */
export class SseParser {
    _buffer: string;
    _pendingCR: boolean;
    _firstChunk: boolean;
    _type: string;
    _data: string;
    _hasData: boolean;
    /** @type {string|null} */
    _id: string | null;
    /** The last event id seen on the stream (what `Last-Event-ID` should carry). */
    lastEventId: string;
    /** @type {number|null} reconnection time sent by the server, ms */
    retry: number | null;
    /** Comments seen (keep-alives); counted, not kept. */
    comments: number;
    /**
     * Feed decoded text; returns the events completed by it.
     * @param {string} text
     * @returns {RawEvent[]}
     */
    push(text: string): RawEvent[];
    /**
     * @param {string} line
     * @param {RawEvent[]} out
     */
    _line(line: string, out: RawEvent[]): void;
    /** @param {RawEvent[]} out */
    _dispatch(out: RawEvent[]): void;
}
