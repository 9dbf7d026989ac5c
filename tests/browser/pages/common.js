// Shared by the test pages: run named attempts, record what the page could observe, report.
'use strict';
const params = new URLSearchParams(location.search);
const results = {};

/** What a page can read from a Response (an opaque one shows type "opaque", status 0, no body). */
async function observe(res) {
  let body;
  try {
    body = await res.text();
  } catch (e) {
    body = `<unreadable: ${e.name}>`;
  }
  return { type: res.type, status: res.status, body, headers: [...res.headers.keys()] };
}

/** Run one attempt; a rejected fetch (CORS refusal or network error) is recorded as an error. */
async function attempt(name, fn) {
  try {
    results[name] = { outcome: 'resolved', ...(await fn()) };
  } catch (e) {
    results[name] = { outcome: 'error', error: String((e && e.name) || e), message: String((e && e.message) || '') };
  }
}

/** Send the results to the test's collector (a cross-origin "simple" POST; the answer is not needed). */
async function report(page) {
  await fetch(params.get('report'), { method: 'POST', mode: 'no-cors', body: JSON.stringify({ page, results }) });
}
