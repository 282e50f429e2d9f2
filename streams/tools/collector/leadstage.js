/* leadstage browser snippet (DESIGN §9): no dependencies, no cookie unless asked.
 *
 *   leadstage.init({endpoint: "https://collect.example.com", key: "lsk_..."});
 *   leadstage.identify("L-4f1c");            // a pseudonymous id, never an e-mail address
 *   leadstage.track("PRICING_VIEWED");
 *   leadstage.track("DECISION_TIMELINE_PROVIDED", {decision_by: "2027-03-31"});
 *
 * Events are batched for up to a second and sent with fetch(..., {keepalive: true}), so a click
 * that leaves the page still arrives; the page's pagehide and hidden visibility flush at once.
 * The key travels in the URL and the body as text/plain, which needs no CORS preflight
 * (browsers do not preflight keepalive requests reliably); a browser key is public anyway, and
 * works only from its origins. Retried batches keep their event ids: the collector and the
 * worker count each event once.
 */
(function (global) {
  "use strict";
  // "@" in any spelling: ASCII, URL-encoded, full-width and small forms
  var EMAIL = /@|%40|\uFF20|\uFE6B/i;
  var MAX_BATCH = 100;
  var MAX_BODY = 60000; // keepalive bodies are capped at 64 KiB per page
  var COOKIE = "leadstage_id";
  var s = {endpoint: null, key: null, lead: null, queue: [], held: [], timer: null,
           cookie: false, flushMs: 1000, source: "WEB"};

  function looksLikeEmail(id) { return EMAIL.test(String(id)); }

  function uuid() {
    if (global.crypto && global.crypto.randomUUID) { return global.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    global.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function readCookie() {
    var m = global.document.cookie.match(/(?:^|;\s*)leadstage_id=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function post(batch, attempt) {
    var url = s.endpoint + "/v1/events?key=" + encodeURIComponent(s.key);
    global.fetch(url, {method: "POST", body: JSON.stringify(batch), keepalive: true,
                       credentials: "omit", mode: "cors",
                       headers: {"Content-Type": "text/plain"}})
      .then(function (r) {
        if ((r.status === 503 || r.status === 429) && attempt < 3) { retry(batch, attempt); }
      })
      .catch(function () { if (attempt < 3) { retry(batch, attempt); } });
  }

  function retry(batch, attempt) {
    global.setTimeout(function () { post(batch, attempt + 1); }, 1000 * (attempt + 1));
  }

  function flush() {
    if (s.timer) { global.clearTimeout(s.timer); s.timer = null; }
    while (s.queue.length) {
      var batch = [], size = 2;
      while (s.queue.length && batch.length < MAX_BATCH) {
        var item = s.queue[0], n = JSON.stringify(item).length + 1;
        if (batch.length && size + n > MAX_BODY) { break; }
        batch.push(s.queue.shift()); size += n;
      }
      post(batch, 0);
    }
  }

  function schedule() {
    if (s.queue.length >= MAX_BATCH) { flush(); return; }
    if (!s.timer) { s.timer = global.setTimeout(flush, s.flushMs); }
  }

  var leadstage = {
    init: function (options) {
      if (!options || !options.endpoint || !options.key) {
        throw new Error("leadstage.init needs {endpoint, key}");
      }
      s.endpoint = String(options.endpoint).replace(/\/+$/, "");
      s.key = options.key;
      s.cookie = options.cookie === true;
      if (options.flushMs) { s.flushMs = options.flushMs; }
      if (s.cookie) {
        var kept = readCookie();
        if (kept && !looksLikeEmail(kept)) { s.lead = kept; }
      }
    },
    /* Returns false, and sends nothing for the id, when it looks like an e-mail address. */
    identify: function (leadId) {
      if (leadId === null || leadId === undefined || leadId === "" || looksLikeEmail(leadId)) {
        if (global.console) { global.console.warn("leadstage: refused a lead id that is " +
                                                  "empty or looks like an e-mail address"); }
        return false;
      }
      s.lead = String(leadId);
      if (s.cookie) {
        global.document.cookie = COOKIE + "=" + encodeURIComponent(s.lead) +
          "; path=/; max-age=31536000; SameSite=Lax" +
          (global.location.protocol === "https:" ? "; Secure" : "");
      }
      while (s.held.length) { var e = s.held.shift(); e.lead_id = s.lead; s.queue.push(e); }
      if (s.queue.length) { schedule(); }
      return true;
    },
    track: function (activity, fields) {
      var event = {event_id: uuid(), occurred_at: new Date().toISOString(),
                   source: s.source, activity: String(activity)};
      if (fields) {
        for (var k in fields) {
          if (Object.prototype.hasOwnProperty.call(fields, k) && !(k in event)) {
            event[k] = fields[k];
          }
        }
      }
      if (s.lead === null) {  // kept (at most MAX_BATCH) until identify() names the lead
        if (s.held.length < MAX_BATCH) { s.held.push(event); }
        return event.event_id;
      }
      event.lead_id = s.lead;
      s.queue.push(event);
      schedule();
      return event.event_id;
    },
    flush: flush
  };

  global.addEventListener("pagehide", flush);
  global.document.addEventListener("visibilitychange", function () {
    if (global.document.visibilityState === "hidden") { flush(); }
  });
  global.leadstage = leadstage;
})(window);
