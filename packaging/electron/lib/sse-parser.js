'use strict';
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

class SseParser {
  constructor() {
    this._buffer = '';
    this._pendingCR = false;
    this._firstChunk = true;
    this._type = '';
    this._data = '';
    this._hasData = false;
    /** @type {string|null} */
    this._id = null;
    /** The last event id seen on the stream (what `Last-Event-ID` should carry). */
    this.lastEventId = '';
    /** @type {number|null} reconnection time sent by the server, ms */
    this.retry = null;
    /** Comments seen (keep-alives); counted, not kept. */
    this.comments = 0;
  }

  /**
   * Feed decoded text; returns the events completed by it.
   * @param {string} text
   * @returns {RawEvent[]}
   */
  push(text) {
    if (this._firstChunk && text.length) {
      this._firstChunk = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this._pendingCR) {
      this._pendingCR = false;
      if (text.startsWith('\n')) text = text.slice(1); // the LF of a CRLF split across chunks
    }
    /** @type {RawEvent[]} */
    const out = [];
    let buf = this._buffer + text;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this._line(buf.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < buf.length) {
          if (buf.charCodeAt(i + 1) === 10) i++;
        } else {
          this._pendingCR = true;
        }
      }
      start = i + 1;
    }
    this._buffer = buf.slice(start);
    return out;
  }

  /**
   * @param {string} line
   * @param {RawEvent[]} out
   */
  _line(line, out) {
    if (line === '') {
      this._dispatch(out);
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this._type = value;
        break;
      case 'data':
        this._data += `${value}\n`;
        this._hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this._id = value;
          this.lastEventId = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  /** @param {RawEvent[]} out */
  _dispatch(out) {
    if (this._hasData) {
      out.push({
        type: this._type || 'message',
        data: this._data.endsWith('\n') ? this._data.slice(0, -1) : this._data,
        id: this._id,
        lastEventId: this.lastEventId,
      });
    }
    this._type = '';
    this._data = '';
    this._hasData = false;
    this._id = null;
  }
}

module.exports = { SseParser };
