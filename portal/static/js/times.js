/* The page's times: each card's "Updated at HH:MM" (when its data was fetched), past moments
   written relative to now ("5 min ago", "2 min 30 sec") in the page's language and counted
   from the portal's clock, and the note of the portal's time zone. portal.js starts it and
   calls it (window.portalTimes). Loaded with `defer` before portal.js; no inline script
   anywhere (a strict Content-Security-Policy). */
(function () {
  "use strict";

  /* ---- "Updated at": the moment a card's data was fetched --------------------------------- */

  // "Updated at HH:MM": when the data the card shows was fetched from its upstream (the
  // X-Widget-Fetched-At header, sent with a 204 too: a refresh that brought the same data
  // moves the time without a swap). Same zone and style as the times the server writes: the
  // portal's configured zone, the locale's short time.
  var clockFormat = null;  // made on first use: loading a zone's rules is not free

  function formatClock(moment) {
    if (!clockFormat) {
      var lang = document.documentElement.lang || undefined;
      var zone = document.body.getAttribute("data-timezone") || undefined;
      try {
        clockFormat = new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: zone });
      } catch (error) {  // an unknown zone name: the browser's own zone rather than no clock
        clockFormat = new Intl.DateTimeFormat(lang, { timeStyle: "short" });
      }
    }
    return clockFormat.format(moment);
  }

  function showUpdated(card, fetchedAt) {
    var line = card.querySelector(".widget-card__checked");
    if (!line) return;
    var moment = fetchedAt ? new Date(fetchedAt) : null;
    if (!moment || isNaN(moment.getTime())) {
      line.innerHTML = "&nbsp;";
      return;
    }
    var label = line.getAttribute("data-label") || "{time}";
    line.textContent = label.replace("{time}", formatClock(moment));
  }

  // The cards' times are in the portal's zone. A person whose computer is in another one (a
  // colleague abroad, overseas) is told which, once, beside the dashboard's title.
  function initZoneNote() {
    var note = document.getElementById("zone-note");
    var zone = document.body.getAttribute("data-timezone");
    if (!note || !zone) return;
    var now = new Date();
    var clock = function (timeZone) {
      return now.toLocaleString("en-GB", { timeZone: timeZone, dateStyle: "short", timeStyle: "short" });
    };
    try {
      if (clock(zone) === clock(undefined)) return;  // another name, the same time: nothing to say
    } catch (error) {
      return;  // a zone this browser does not know
    }
    var utc = /^(Etc\/)?(UTC|GMT|Zulu|UCT|Universal)$/.test(zone);
    var label = utc ? note.getAttribute("data-label-utc") : note.getAttribute("data-label");
    note.querySelector(".zone-note__text").textContent = label.replace("{zone}", zone);
    note.hidden = false;
  }

  /* ---- times relative to now ("5 min ago"), written by the page ---------------------------- */

  // A card carries its past moments as they are (<time datetime data-ago>, [data-since]), the
  // same HTML whatever the hour, so that an unchanged card is a 204 all day; the page writes
  // them relative to its own clock, in its language, after each swap and every 30 s.
  // Babel's units and rounding, as the server writes such times (format_timedelta).
  var AGO_UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60]];
  var TIMES_EVERY = 30000;
  var agoFormat = null;  // made on first use, in the page's language
  var unitFormats = {};

  function agoText(seconds) {
    if (seconds < 60) return document.body.getAttribute("data-just-now") || "";  // or a clock a little ahead
    if (!agoFormat) {
      agoFormat = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined,
        { numeric: "always", style: "short" });
    }
    for (var i = 0; i < AGO_UNITS.length; i += 1) {
      var value = seconds / AGO_UNITS[i][1];
      if (value >= 1) return unabbreviated(agoFormat.format(-Math.max(1, Math.round(value)), AGO_UNITS[i][0]));
    }
    return "";
  }

  function unabbreviated(text) {
    // English's short style writes "2 min. ago", "1 hr. ago"; the durations beside them (CLDR's
    // unit style, as the server writes them) "2 min 30 sec": one way on the page, without the dots.
    return /^en\b/.test(document.documentElement.lang) ? text.replace(/\.(?=\s)/g, "") : text;
  }

  function unitText(value, unit) {
    if (!unitFormats[unit]) {
      unitFormats[unit] = new Intl.NumberFormat(document.documentElement.lang || undefined,
        { style: "unit", unit: unit, unitDisplay: "short" });
    }
    return unitFormats[unit].format(value);
  }

  // "1 hr 5 min", "2 min 30 sec": the server's duration_text.
  function durationText(total) {
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    var parts = [];
    if (hours) parts.push(unitText(hours, "hour"));
    if (minutes) parts.push(unitText(minutes, "minute"));
    if ((seconds && !hours) || !parts.length) parts.push(unitText(seconds, "second"));
    return parts.join(" ");
  }

  // Counted from the portal's clock, not the computer's: a laptop minutes off would otherwise
  // call an alert that just fired "12 min ago", and disagree with the times the server writes
  // ("due in 3 h"). The page learns the difference from when it was served (data-served-at, in
  // ms) and from each answer's Date header (whole seconds: under 5 s it is noise, not skew).
  var SKEW_NOISE = 5000;
  var clockOffset = 0;

  function learnClock(portalMs, localMs) {
    if (isNaN(portalMs)) return;
    var offset = portalMs - localMs;
    clockOffset = Math.abs(offset) < SKEW_NOISE ? 0 : offset;
  }

  function learnClockFrom(xhr) {
    var said = xhr && xhr.getResponseHeader("Date");
    if (said) learnClock(Date.parse(said) + 500, Date.now());  // +500: the header drops the ms
  }

  function writeTimes(root) {
    if (!root || !root.querySelectorAll) return;
    var now = Date.now() + clockOffset;
    root.querySelectorAll("time[data-ago]").forEach(function (node) {
      var moment = Date.parse(node.getAttribute("datetime"));
      if (isNaN(moment)) return;
      var text = (node.getAttribute("data-label") || "{time}").replace("{time}", agoText((now - moment) / 1000));
      if (node.textContent !== text) node.textContent = text;
    });
    root.querySelectorAll("[data-since]").forEach(function (node) {
      var start = Date.parse(node.getAttribute("data-since"));
      var seconds = Math.round((now - start) / 1000);
      if (isNaN(start) || seconds < 60) {  // under a minute it says nothing yet
        node.hidden = true;
        return;
      }
      var text = (node.getAttribute("data-label") || "{time}").replace("{time}", durationText(seconds));
      if (node.textContent !== text) node.textContent = text;
      node.hidden = false;
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) { writeTimes(event.detail.elt); });

  // The page's start: the portal's clock from when the page was served, its times written,
  // and written again every TIMES_EVERY ms.
  function start(grid) {
    if (grid) learnClock(Number(grid.getAttribute("data-served-at")), Date.now());
    writeTimes(document);
    window.setInterval(function () { writeTimes(document); }, TIMES_EVERY);
  }

  window.portalTimes = {
    start: start,
    initZoneNote: initZoneNote,
    showUpdated: showUpdated,
    learnClockFrom: learnClockFrom,
  };
})();
