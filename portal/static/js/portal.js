/* The portal's behaviour: card polling while the tab is visible, fragment versions,
   live-region announcements, the theme switch and the tile filter. No inline script anywhere:
   this file is loaded with `defer` under a strict Content-Security-Policy. */
(function () {
  "use strict";

  var VERSION_HEADER = "X-Widget-Version";
  var FETCHED_HEADER = "X-Widget-Fetched-At";

  /* ---- polling ------------------------------------------------------------------------ */

  // Each card body polls its own endpoint every data-interval seconds, only while visible.
  var cards = [];

  function cardOf(body) {
    return body.closest(".widget-card");
  }

  function poll(entry) {
    if (entry.stopped || entry.inFlight) return;
    entry.lastPoll = Date.now();
    htmx.trigger(entry.body, "poll");
  }

  function schedule(entry) {
    var period = entry.interval * 1000;
    // A small offset per card spreads the requests instead of firing them all at once.
    var offset = Math.floor(Math.random() * Math.min(3000, period / 4));
    window.clearTimeout(entry.timer);
    window.clearInterval(entry.timer);
    entry.timer = window.setTimeout(function () {
      entry.timer = window.setInterval(function () {
        if (document.visibilityState === "visible") poll(entry);
      }, period);
    }, offset);
  }

  function initPolling() {
    document.querySelectorAll(".widget-card__body[data-interval]").forEach(function (body) {
      var seconds = parseInt(body.getAttribute("data-interval"), 10);
      if (!(seconds > 0)) return;
      var entry = { body: body, interval: seconds, lastPoll: Date.now(), stopped: false, inFlight: false };
      body._portalPoll = entry;
      cards.push(entry);
      schedule(entry);
    });

    // Coming back to the tab: refresh what is overdue at once rather than at the next tick,
    // and count the next interval from now (the old tick could fire a moment later).
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState !== "visible") return;
      var now = Date.now();
      cards.forEach(function (entry) {
        if (entry.stopped || now - entry.lastPoll < entry.interval * 1000) return;
        poll(entry);
        schedule(entry);
      });
    });
  }

  /* ---- fragment versions, state and announcements --------------------------------------- */

  function currentContent(body) {
    return body.querySelector(":scope > .widget-content");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var body = event.detail.elt;
    if (!body.classList || !body.classList.contains("widget-card__body")) return;
    var content = currentContent(body);
    var version = content && content.getAttribute("data-version");
    if (version) event.detail.headers[VERSION_HEADER] = version;
    // What the card asks to see (a filter): the user's latest choice, else its form's fields,
    // goes with every poll, and the server cuts the data accordingly (Widget.choice).
    var entry = body._portalPoll;
    var form = content && content.querySelector("form[data-card-choice]");
    var choice = (entry && entry.choice) || (form && new FormData(form));
    if (choice) {
      choice.forEach(function (value, name) {
        event.detail.parameters[name] = value;
      });
    }
  });

  // A changed choice is kept for the page's life and polls the card at once (htmx queues the
  // request behind one in flight); the form itself is never submitted.
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-card-choice]");
    var body = form && form.closest(".widget-card__body");
    var entry = body && body._portalPoll;
    if (!entry) return;
    entry.choice = new FormData(form);
    entry.inFlight = false;
    poll(entry);
  });

  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form[data-card-choice]")) event.preventDefault();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var entry = event.detail.elt._portalPoll;
    if (entry) {
      entry.inFlight = true;
      entry.lastPoll = Date.now();
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var body = event.detail.elt;
    var entry = body._portalPoll;
    if (!entry) return;
    entry.inFlight = false;
    var card = cardOf(body);
    var xhr = event.detail.xhr;
    var reachable = xhr && xhr.status > 0 && xhr.status < 500;
    card.classList.toggle("is-offline", !reachable);
    var notice = card.querySelector(".widget-card__offline");
    if (notice) notice.hidden = reachable;
    if (reachable) showUpdated(card, xhr.getResponseHeader(FETCHED_HEADER));
    if (reachable) pollSoonIfLoading(entry);
  });

  // A card whose data is still being fetched ("loading") asks again soon rather than at its
  // interval: after 2 s, then 4, 8, ... up to the interval.
  function pollSoonIfLoading(entry) {
    var content = currentContent(entry.body);
    window.clearTimeout(entry.soonTimer);
    if (!content || content.getAttribute("data-poll") !== "soon" || entry.stopped) {
      entry.soonDelay = 0;
      return;
    }
    entry.soonDelay = Math.min((entry.soonDelay || 1000) * 2, entry.interval * 1000);
    entry.soonTimer = window.setTimeout(function () {
      if (document.visibilityState === "visible") poll(entry);
    }, entry.soonDelay);
  }

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

  /* ---- no jump when data arrives ------------------------------------------------------------ */

  // early.js reserved each card's height from the last visit; once a card has its data the
  // reservation is lifted and the card's new height recorded for the next visit.
  var HEIGHTS_KEY = "portal.cardHeights";

  function rememberHeight(body) {
    var sheet = window.portalReservedHeights;
    if (sheet) {
      for (var i = sheet.cssRules.length - 1; i >= 0; i -= 1) {
        if (sheet.cssRules[i].selectorText === "#" + body.id) sheet.deleteRule(i);
      }
    }
    try {
      var saved = JSON.parse(window.localStorage.getItem(HEIGHTS_KEY) || "null");
      var lang = document.documentElement.lang;
      if (!saved || saved.width !== window.innerWidth || saved.lang !== lang) {
        saved = { width: window.innerWidth, lang: lang, heights: {} };
      }
      saved.heights[body.id] = body.offsetHeight;
      window.localStorage.setItem(HEIGHTS_KEY, JSON.stringify(saved));
    } catch (error) {
      /* nothing to keep it in */
    }
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var body = event.detail.elt;
    var entry = body._portalPoll;
    if (!entry) return;
    var content = currentContent(body);
    if (!content) return;
    if (content.getAttribute("data-poll") === "stop") entry.stopped = true;
    rememberHeight(body);
    announce(cardOf(body), content.getAttribute("data-announce") || "", entry);
  });

  // A polite live region per card says when the card's state changes, not on every refresh,
  // and not on the first load (the page has just been announced as a whole).
  function announce(card, text, entry) {
    var region = card.querySelector("[data-live-region]");
    if (!region) return;
    if (!entry.announcedOnce) {
      entry.announcedOnce = true;
      entry.lastAnnouncement = text;
      return;
    }
    if (text && text !== entry.lastAnnouncement) region.textContent = text;
    entry.lastAnnouncement = text;
  }

  /* ---- theme switch ------------------------------------------------------------------------ */

  var THEME_COOKIE = "portal_theme";
  var NEXT_THEME = { system: "light", light: "dark", dark: "system" };

  function initThemeSwitch() {
    var button = document.getElementById("theme-switch");
    if (!button) return;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var next = NEXT_THEME[button.getAttribute("data-theme-current")] || "system";
      var root = document.documentElement;
      if (next === "system") root.removeAttribute("data-theme");
      else root.setAttribute("data-theme", next);
      document.cookie = THEME_COOKIE + "=" + next + "; Path=/; Max-Age=31536000; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
      button.setAttribute("data-theme-current", next);
      var label = button.getAttribute("data-label-" + next) || "";
      button.setAttribute("aria-label", label);
      button.setAttribute("title", label);
      button.href = button.href.replace(/\/theme\/[a-z]+/, "/theme/" + NEXT_THEME[next]);
    });
    button.addEventListener("keydown", function (event) {
      if (event.key === " ") {
        event.preventDefault();
        button.click();
      }
    });
  }

  /* ---- tile filter ------------------------------------------------------------------------- */

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function initTileFilter() {
    var input = document.getElementById("tile-filter");
    if (!input) return;
    var items = Array.prototype.slice.call(document.querySelectorAll(".tile-item"));
    var empty = document.getElementById("tile-filter-empty");
    var haystacks = items.map(function (item) { return fold(item.getAttribute("data-search") || ""); });

    function apply() {
      var words = fold(input.value).split(/\s+/).filter(Boolean);
      var shown = 0;
      items.forEach(function (item, index) {
        var match = words.every(function (word) { return haystacks[index].indexOf(word) !== -1; });
        item.hidden = !match;
        if (match) shown += 1;
      });
      if (empty) empty.hidden = shown > 0;
    }

    input.addEventListener("input", apply);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        input.value = "";
        apply();
      }
    });

    document.addEventListener("keydown", function (event) {
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
      var target = event.target;
      var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
      if (typing) return;
      event.preventDefault();
      input.focus();
      input.select();
    });
  }

  /* ---- user menu ----------------------------------------------------------------------------- */

  // A <details> dropdown: it works without script; this only closes it on a click outside or Escape.
  function initUserMenu() {
    var menu = document.getElementById("user-menu");
    if (!menu) return;
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  }

  /* ---- changes made from a card ----------------------------------------------------------- */

  // A change sent from inside a card (a status menu) replaces the card's body: focus goes back
  // to the element the form names in data-focus-after, so a keyboard user stays where they were.
  document.addEventListener("htmx:afterSettle", function (event) {
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var form = source && source.closest && source.closest("[data-focus-after]");
    var target = form && document.getElementById(form.getAttribute("data-focus-after"));
    if (target) target.focus();
  });

  // A button with data-copy="ID" copies the value (or text) of the element ID to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    function done() {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || label;
      window.setTimeout(function () { button.textContent = label; }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select && source.select(); });
    } else if (source.select) {
      source.select();  // no clipboard API over plain HTTP: selected, Ctrl-C copies it
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    initUserMenu();
    initThemeSwitch();
    initTileFilter();
    initPolling();
  });
})();
