/* The portal's behaviour: the cards' life cycle (polling while the tab is visible, fragment
   versions, notices, live-region announcements, what came since the last look, the tab's icon
   and notifications) and the portal unreachable or upgraded. It starts the page's times
   (times.js), its controls (controls.js), the packing of the cards (packing.js) and the layout
   editor (layout.js), and merges a card's refresh with morph.js; all are loaded before it. No
   inline script anywhere: this file is loaded with `defer` under a strict
   Content-Security-Policy. */
(function () {
  "use strict";

  // htmx did not load (blocked, or a failed request): nothing here can work; early.js tells the
  // person, and the links (tools, language, theme) work as plain links.
  if (!window.htmx) return;

  var VERSION_HEADER = "X-Widget-Version";
  var FETCHED_HEADER = "X-Widget-Fetched-At";
  var POLL_HEADER = "X-Widget-Poll";
  var BUILD_HEADER = "X-Portal-Build";

  // The page's times (times.js, loaded before this file): a card's "Updated at", the portal's
  // clock. Should that file be missing, the cards still poll; their times are not written.
  var times = window.portalTimes || { showUpdated: function () {}, learnClockFrom: function () {} };

  // The page's controls (controls.js, loaded before this file): without it they work as plain
  // links and menus, and a refreshed card shows its first tab.
  var controls = window.portalControls || {
    openDropdowns: function () { return []; }, restoreTab: function () {}
  };

  /* ---- polling ------------------------------------------------------------------------ */

  // Each card body polls its own endpoint every data-interval seconds, only while visible.
  var cards = [];

  function cardOf(body) {
    return body.closest(".widget-card");
  }

  // A collapsed or hidden card does not poll (the user's layout); it resumes when shown.
  function paused(entry) {
    var card = cardOf(entry.body);
    return card.classList.contains("is-collapsed") || card.classList.contains("is-hidden-card");
  }

  // In a hidden tab only the background cards poll, whatever asks (their turn, the portal back
  // after an outage, a change told): the others are overdue when the tab is shown, and poll then.
  // `chosen`: the person's own filter asks, which goes even while a change is on its way.
  function poll(entry, chosen) {
    if (entry.stopped || entry.inFlight || paused(entry) || outage) return;
    if (entry.acting && !chosen) return;
    if (document.visibilityState === "hidden" && !entry.background) return;
    entry.lastPoll = Date.now();
    htmx.trigger(entry.body, "poll");
  }

  // The cards of a page take turns across their period (six at 30 s: one every 5 s), each at its
  // own moment of the period counted from the page's start, kept through every re-schedule. So
  // the page hears within seconds of a change any card's answer tells of (a tool's webhook, a
  // change made in another tab: caching/changes.py), and its requests are spread, not fired
  // together. The first card's first turn is a whole period after the page was drawn, the
  // others' sooner; a card just polled (the tab shown again, a change told) waits at least a
  // whole period for its next turn.
  var pollingSince = Date.now();

  // A hidden page polls only the cards that tell the tab what happened (data-background-poll:
  // status, incidents), once a minute: its icon and notifications say it meanwhile. The others
  // wait for the person to come back (they poll at once then).
  var BACKGROUND_EVERY = 60000;

  function schedule(entry, atStart) {
    var period = entry.interval * 1000;
    var turn = period * (cards.length - cards.indexOf(entry)) / cards.length;
    var now = Date.now();
    var earliest = atStart ? now : now + Math.max(0, period - (now - entry.lastPoll));
    var next = pollingSince + turn;
    next += Math.ceil(Math.max(0, earliest - next) / period) * period;
    window.clearTimeout(entry.timer);
    window.clearInterval(entry.timer);
    var tick = function () {
      if (document.visibilityState === "visible") poll(entry);
      else if (entry.background && Date.now() - entry.lastPoll >= Math.max(period, BACKGROUND_EVERY) - 1000) poll(entry);
    };
    entry.timer = window.setTimeout(function () {
      tick();
      entry.timer = window.setInterval(tick, period);
    }, next - now);
  }

  function initPolling() {
    document.querySelectorAll(".widget-card__body[data-interval]").forEach(function (body) {
      var seconds = parseInt(body.getAttribute("data-interval"), 10);
      if (!(seconds > 0)) return;
      var entry = { body: body, interval: seconds, lastPoll: Date.now(), stopped: false, inFlight: false,
        background: body.hasAttribute("data-background-poll") };
      body._portalPoll = entry;
      cards.push(entry);
      var content = currentContent(body);
      if (content && !content.classList.contains("is-loading")) drawnWithData(entry, content);
    });
    cards.forEach(function (entry) { schedule(entry, true); });

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

  // A card the page drew with its data (fresh in the portal's cache) is what a first answer
  // would have been: its tile dots and other out-of-band pieces go where they belong, its
  // height is kept, its time shown, and its state is not announced (the page is, as a whole).
  function drawnWithData(entry, content) {
    var card = cardOf(entry.body);
    entry.body.querySelectorAll(":scope > [hx-swap-oob]").forEach(function (piece) {
      var target = piece.id && document.getElementById(piece.id);
      piece.removeAttribute("hx-swap-oob");
      if (target && target !== piece) target.replaceWith(piece);
      else piece.remove();
    });
    if (content.getAttribute("data-poll") === "stop") entry.stopped = true;
    entry.announcedOnce = true;
    entry.lastAnnouncement = content.getAttribute("data-announce") || "";
    rememberHeight(entry.body);
    var line = card.querySelector(".widget-card__checked");
    entry.fetchedAt = line && line.getAttribute("data-fetched-at");
    entry.shownAsk = asked(choiceOf(entry, content));
    markNewRows(entry.body, content, false);  // the rows it holds are the ones already there
    raiseAlarms(entry, entry.body, content);  // what it holds is not news
    times.showUpdated(card, entry.fetchedAt);
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
    var choice = choiceOf(entry, content);
    if (choice) {
      choice.forEach(function (value, name) {
        event.detail.parameters[name] = value;
      });
    }
    // A poll asking what the card on screen answers (the same choice) says when that data was
    // fetched: a worker holding older data lets the card keep it rather than go back in time
    // (each worker of a pod without Redis caches on its own). A new choice is always answered.
    if (!entry) return;
    entry.asking = asked(choice);
    if (version && entry.fetchedAt && entry.shownAsk === entry.asking) {
      event.detail.headers[FETCHED_HEADER] = entry.fetchedAt;
    }
  });

  function choiceOf(entry, content) {
    var form = content && content.querySelector("form[data-card-choice]");
    return (entry && entry.choice) || (form && new FormData(form));
  }

  function asked(choice) {
    return choice ? new URLSearchParams(choice).toString() : "";
  }

  // A changed choice is kept for the page's life and polls the card at once (htmx queues the
  // request behind one in flight); the form itself is never submitted.
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-card-choice]");
    var body = form && form.closest(".widget-card__body");
    var entry = body && body._portalPoll;
    if (!entry) return;
    entry.choice = new FormData(form);
    entry.chosen = true;  // its answer says what it shows (data-choice-said)
    entry.inFlight = false;
    poll(entry, true);
  });

  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form[data-card-choice]")) event.preventDefault();
  });

  // A button that makes a choice of the card's form (the incidents' "Show all"): as if the
  // person had picked that option, which keeps it and polls the card.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-choose]");
    var option = button && document.getElementById(button.getAttribute("data-choose"));
    if (!option || option.checked) return;
    option.checked = true;
    option.dispatchEvent(new Event("change", { bubbles: true }));
    option.focus();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var entry = event.detail.elt._portalPoll;
    if (entry) {
      entry.inFlight = true;
      entry.lastPoll = Date.now();
    }
  });

  // A request from inside a card that redraws its body (a status change, a month asked for):
  // the card does not poll while it is on its way. (htmx queued such a poll behind it and sent
  // it as soon as it was answered: the poll's answer took the change's notice away at once.)
  // Released by the request's own loadend, which ends every request (answered, failed,
  // dropped, timed out) after htmx has swapped its answer: htmx's afterRequest did not always
  // reach the document for it (a card then never polled again after a change).
  document.addEventListener("htmx:beforeSend", function (event) {
    var target = event.detail.target;
    var entry = target && target._portalPoll;
    var xhr = event.detail.xhr;
    if (!entry || event.detail.elt === target || !xhr) return;
    entry.acting = xhr;
    xhr.addEventListener("loadend", function () {
      if (entry.acting === xhr) entry.acting = null;
    });
  });

  // A note under a card about the person's own request (the live region reads it out). `kind`
  // names what set it ("choice", "unanswered"): the card's next answer clears only a note about
  // an unanswered request. Empty text: no note.
  function showNote(card, text, kind) {
    var note = card.querySelector("[data-choice-note]");
    if (!note) return;
    note.textContent = text || "";
    note.hidden = !text;
    note.setAttribute("data-note", text ? kind : "");
    var region = card.querySelector("[data-live-region]");
    if (region && text) region.textContent = text;
  }

  // Keeping a choice (a filter, a sort) for every device is a POST from the choice's own control;
  // the choice already holds on the page. When the portal cannot keep it (its database is away:
  // 503) or refuses it (403: a stale page's token), the card says so under it, and the live
  // region too; once a choice is kept again, the note goes.
  function noteChoice(control, xhr) {
    var card = control.closest(".widget-card");
    var note = card && card.querySelector("[data-choice-note]");
    if (!note || !xhr) return;
    var text = xhr.status === 503 ? note.getAttribute("data-unkept")
      : xhr.status === 403 || xhr.status === 0 || xhr.status >= 500 ? note.getAttribute("data-refused") : "";
    showNote(card, text, "choice");
  }

  // A kept choice goes a moment after its last change (a sort browsed with the arrow keys is
  // saved once); one still waiting when the person leaves the page or the tab goes now, in a
  // request that outlives the page. Sent again later by htmx if the page stays: the same value.
  // (Listened for on beforeunload only while one waits: some browsers keep no page with such a
  // listener for their back button; beforeunload comes before the next page is asked for,
  // pagehide after, so a reload shows the choice just made.)
  var unsentChoices = [];

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";  // the portal refuses the request, and says so
    }
  }

  // A change refused for its token alone (the person signed in again in another tab: a new
  // session, a new token) brings the session's token back: the page takes it, and the next try
  // goes through.
  function takeRenewedToken(token) {
    if (!token) return;
    var headers = {};
    try {
      headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (ignored) { /* replaced whole below */ }
    headers["X-CSRFToken"] = token;
    document.body.setAttribute("hx-headers", JSON.stringify(headers));
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 403) takeRenewedToken(xhr.getResponseHeader("X-Portal-CSRF"));
  });

  function unsent(control, waits) {
    var at = unsentChoices.indexOf(control);
    if (waits && at < 0) unsentChoices.push(control);
    if (!waits && at >= 0) unsentChoices.splice(at, 1);
    if (unsentChoices.length) window.addEventListener("beforeunload", sendUnsentChoices);
    else window.removeEventListener("beforeunload", sendUnsentChoices);
  }

  document.addEventListener("change", function (event) {
    var control = event.target;
    if (control.matches && control.matches("form[data-card-choice] [hx-post]")) unsent(control, true);
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    unsent(event.detail.elt, false);
  });

  function sendUnsentChoices() {
    unsentChoices.slice().forEach(function (control) {
      unsent(control, false);
      window.fetch(control.getAttribute("hx-post"), {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
        body: new URLSearchParams(new FormData(control.closest("form")))
      }).catch(function () { /* the page is going: nothing left to tell */ });
    });
  }

  window.addEventListener("pagehide", sendUnsentChoices);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") sendUnsentChoices();
  });

  // A change sent from a card (a task's status, the calendar feed's buttons) that got no answer
  // from the portal (the network, or a proxy's 502 or 504 in front of it) may or may not have
  // been made, and htmx swaps nothing: the card says so under it, and asks for its data at once,
  // which shows where things stand. The note goes with the card's next answer of its own.
  // (A request htmx itself aborts, the first of two quick clicks, is not one: hence its error
  // events, which an abort does not fire, rather than htmx:afterRequest, which it does.)
  // A control's read (the calendar's next month) that gets no answer is said too, in its words.
  function requestFrom(event) {
    var elt = event.detail.elt;
    var verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (!elt || elt._portalPoll || !elt.closest || !verb) return null;
    if (elt.closest("form[data-card-choice]")) return null;  // noteChoice says it
    return elt.closest(".widget-card");
  }

  // `refused`: the HTTP status of a 4xx that was not the portal's answer to the card (a proxy's
  // 429, a route gone after an upgrade): the request was stopped on its way, nothing was done.
  function noteUnanswered(event, refused) {
    var card = requestFrom(event);
    var note = card && card.querySelector("[data-choice-note]");
    if (!note) return;
    var read = event.detail.requestConfig.verb === "get";
    var text = refused
      ? (note.getAttribute(read ? "data-stopped-read" : "data-stopped") || "").replace("{status}", String(refused))
      : note.getAttribute(read ? "data-unanswered-read" : "data-unanswered");
    showNote(card, text, "unanswered");
    // Also said where the person is looking: in the menu the change came from (the card's note
    // is at its foot, off screen on a long card). The card's next answer redraws the menu.
    var menu = !read && event.detail.elt.closest("details[data-dropdown]");
    var list = menu && menu.querySelector(".status-menu__list");
    if (list) {
      var said = list.querySelector(".status-menu__note") || document.createElement("p");
      said.className = "status-menu__note";
      said.textContent = text;
      list.insertBefore(said, list.firstChild);
    }
    var body = card.querySelector(".widget-card__body");
    var entry = body && body._portalPoll;
    if (!read && entry) {
      // The card shows where things stand at once. The change is over, though its request's
      // loadend (which releases the card) comes after this event: released here, or this poll
      // was skipped and the card waited for its next turn (up to its whole period).
      if (entry.acting === event.detail.xhr) entry.acting = null;
      poll(entry);
    }
    if (read) offerRetry(event.detail.elt);
    if (!read) giveFocusBack(event);
  }

  // The choices are disabled while a change is on its way, which drops the keyboard's focus to
  // the page's body; with no answer to swap in, it goes back to the choice pressed (enabled
  // again by then), in its still open menu, so that the person can try again from there.
  function giveFocusBack(event) {
    var config = event.detail.requestConfig;
    var pressed = config && config.triggeringEvent && config.triggeringEvent.submitter;
    var form = focusAfter(event.detail.elt);
    window.setTimeout(function () {
      if (document.activeElement && document.activeElement !== document.body) return;  // moved on
      var target = pressed && pressed.isConnected && !pressed.disabled ? pressed
        : form && document.getElementById(form.getAttribute("data-focus-after"));
      if (target) target.focus();
    }, 0);
  }

  // A part that loads itself once (the calendar feed's panel, on its "retry" trigger too) and
  // got no answer would show its placeholder for good: it offers to ask again instead.
  function offerRetry(part) {
    var label = part.getAttribute("data-label-retry");
    if (!label || !part.hasAttribute("data-keeps-content")) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button is-small";
    button.textContent = label;
    button.addEventListener("click", function () { htmx.trigger(part, "retry"); });
    part.replaceChildren(button);
  }

  document.addEventListener("htmx:sendError", noteUnanswered);
  // A request no answer ends (htmx-config's timeout, 150 s): a change says it got none, and
  // a poll is over (htmx:afterRequest follows), so that its card polls again at its interval
  // instead of waiting for good behind a request that will never end.
  document.addEventListener("htmx:timeout", noteUnanswered);
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var login = xhr && xhr.status === 401 && xhr.getResponseHeader("X-Portal-Login");
    if (login) {
      leaveForLogin(login);
      return;
    }
    if (!portalAnswered(xhr)) noteUnanswered(event);
    else if (xhr.status >= 400 && xhr.status < 500 && xhr.status !== 403) noteUnanswered(event, xhr.status);
  });

  // A change refused because the session had ended: the server names the login rather than
  // sending the page there at once (HX-Redirect), so that the page can note the loss for the
  // dashboard the login comes back to, which says it (noteLostChange).
  var LOST_CHANGE = "portal-lost-change";

  function leaveForLogin(login) {
    try {
      window.sessionStorage.setItem(LOST_CHANGE, "1");
    } catch (ignored) { /* storage refused: the page goes all the same */ }
    window.location.href = login;
  }

  function noteLostChange() {
    var notice = document.getElementById("portal-lost-change");
    var lost = false;
    try {
      lost = window.sessionStorage.getItem(LOST_CHANGE) === "1";
      window.sessionStorage.removeItem(LOST_CHANGE);
    } catch (ignored) { /* nothing was noted */ }
    if (!notice || !lost) return;
    notice.hidden = false;
    document.getElementById("portal-lost-change-close").addEventListener("click", function () {
      notice.hidden = true;
    });
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var body = event.detail.elt;
    if (body.closest && body.closest("form[data-card-choice]") && event.detail.requestConfig &&
        event.detail.requestConfig.verb === "post") {
      noteChoice(body, event.detail.xhr);
      return;
    }
    var entry = body._portalPoll;
    var xhr = event.detail.xhr;
    if (!entry) {
      var from = requestFrom(event);
      var answered = portalAnswered(xhr) && xhr.status < 400;  // (a 4xx stopped on its way is said)
      if (from && answered && from.querySelector("[data-note='unanswered']")) showNote(from, "", "");
      return;
    }
    entry.inFlight = false;
    var card = cardOf(body);
    if (xhr && xhr.status === 0) return;  // no answer: pollUnanswered decides why (below)
    var unanswered = card.querySelector("[data-note='unanswered']");
    if (unanswered && xhr && xhr.status === 200) showNote(card, "", "");  // the card as it stands now
    if (!portalAnswered(xhr)) {
      portalUnreachable();
      return;
    }
    if (xhr.status === 204) entry.shownAsk = entry.asking;  // the card on screen answers it
    if (xhr.status === 200 || xhr.status === 204) entry.fetchedAt = xhr.getResponseHeader(FETCHED_HEADER);
    noteRelease(xhr.getResponseHeader(BUILD_HEADER));
    times.learnClockFrom(xhr);
    // Only an answer that is the card's moves its time; a proxy's 404 or 429 leaves the card,
    // and its time, as they were.
    if (xhr.status === 200 || xhr.status === 204 || xhr.status === 403 || cardFailed(xhr)) {
      times.showUpdated(card, xhr.getResponseHeader(FETCHED_HEADER));
    }
    // A card the person may no longer see: their roles changed since the page was drawn.
    if (xhr.status === 403) document.dispatchEvent(new CustomEvent("portal:card-forbidden"));
    pollSoonIfLoading(entry, xhr.status === 204 && xhr.getResponseHeader(POLL_HEADER) === "soon");
    pollWhatChanged(xhr.getResponseHeader(CHANGED_HEADER));
  });

  // A poll that got no answer: the network, or the portal, is down. Not a poll the page dropped
  // itself (a change sent from the card replaces the poll on its way, hx-sync): htmx ends that
  // one with htmx:sendAbort, not with these, and the change's answer redraws the card.
  function pollUnanswered(event) {
    if (event.detail.elt && event.detail.elt._portalPoll) portalUnreachable();
  }

  document.addEventListener("htmx:sendError", pollUnanswered);
  document.addEventListener("htmx:timeout", pollUnanswered);

  /* ---- a card the portal could not draw ----------------------------------------------------- */

  // Its poll answers 500 with a body of its own (X-Portal-Card-Failed): shown in that card,
  // which keeps polling at its interval like every other card.
  var FAILED_HEADER = "X-Portal-Card-Failed";

  function cardFailed(xhr) {
    return xhr.status === 500 && xhr.getResponseHeader(FAILED_HEADER) === "1";
  }

  // Whether the portal itself answered: no answer, or a 5xx, means it is down or a proxy in front
  // of it answered (an upstream's failure is a card's 200), unless the portal said that it could
  // not draw the card.
  function portalAnswered(xhr) {
    return Boolean(xhr) && xhr.status > 0 && (xhr.status < 500 || cardFailed(xhr));
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.xhr || !cardFailed(event.detail.xhr)) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  });

  /* ---- a panel that replaces the control that had the focus -------------------------------- */

  // A panel marked data-keep-focus (the calendar feed's) is swapped whole by its own buttons:
  // the button that had the focus is gone, and the focus would fall back to the top of the
  // page. It goes to the new panel's notice instead (read out, as it takes the focus), else to
  // its first control, so that a keyboard user carries on where they were.
  var focusInto = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var keep = target && target.id && target.hasAttribute("data-keep-focus");
    focusInto = keep && target.contains(document.activeElement) ? target.id : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    var panel = focusInto && document.getElementById(focusInto);
    focusInto = null;
    if (!panel || panel.contains(document.activeElement)) return;
    var to = panel.querySelector(".card-notice") || panel.querySelector("button, input, a[href]");
    if (!to) return;
    if (!to.matches("button, input, a[href]")) to.setAttribute("tabindex", "-1");
    to.focus();
  });

  /* ---- a change a tool pushed: its cards poll at once ---------------------------------------- */

  // Every card answer says when each tool last pushed a change (Taiga's webhooks), as
  // "taiga=<ms>;...". A value newer than what the page knows polls the cards of that tool now,
  // rather than at their next tick; the page starts from what it was drawn with.
  var CHANGED_HEADER = "X-Portal-Changed";
  var grid = document.getElementById("widget-grid");
  var changesKnown = parseChanges(grid && grid.getAttribute("data-changed"));

  function parseChanges(text) {
    var found = {};
    (text || "").split(";").forEach(function (pair) {
      var at = pair.indexOf("=");
      var stamp = at > 0 ? Number(pair.slice(at + 1)) : NaN;
      if (stamp > 0) found[pair.slice(0, at)] = stamp;
    });
    return found;
  }

  // `answered`: the card whose own answer told the change (a status changed from it), which holds
  // it already.
  function pollWhatChanged(header, answered) {
    var told = parseChanges(header);
    Object.keys(told).forEach(function (upstream) {
      if (told[upstream] <= (changesKnown[upstream] || 0)) return;
      changesKnown[upstream] = told[upstream];
      cards.forEach(function (entry) {
        var names = (cardOf(entry.body).getAttribute("data-upstreams") || "").split(" ");
        if (names.indexOf(upstream) < 0 || entry === answered) return;
        poll(entry);
        schedule(entry);
      });
    });
  }

  /* ---- the portal itself unreachable -------------------------------------------------------- */

  // One banner at the top of the page says it (not one per card); the cards stop polling and
  // the page asks /healthz after 2 s, then 4, 8, ... up to a minute, or at once with "Retry now".
  // When it answers, every card polls again.
  var RETRY_FIRST = 2000;
  var RETRY_MAX = 60000;
  var outage = null;  // { delay, due, timer, ticker } while the portal cannot be reached

  function showCountdown() {
    var when = document.getElementById("portal-offline-when");
    if (!when || !outage) return;
    var seconds = Math.max(0, Math.ceil((outage.due - Date.now()) / 1000));
    when.textContent = (when.getAttribute("data-label") || "").replace("{seconds}", seconds);
  }

  function retryLater() {
    window.clearTimeout(outage.timer);
    window.clearInterval(outage.ticker);
    // Without a network no try can succeed: none is made, no countdown runs, and the browser's
    // "online" event (below) tries at once.
    var offline = navigator.onLine === false;
    ["portal-offline-when", "portal-offline-retry"].forEach(function (id) {
      var part = document.getElementById(id);
      if (part) part.hidden = offline;
    });
    if (offline) return;
    outage.due = Date.now() + outage.delay;
    outage.timer = window.setTimeout(probe, outage.delay);
    outage.ticker = window.setInterval(showCountdown, 1000);
    showCountdown();
  }

  function probe() {
    var banner = document.getElementById("portal-offline");
    if (!outage || !banner) return;
    window.clearTimeout(outage.timer);
    window.fetch(banner.getAttribute("data-health-url"), { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok; }, function () { return false; })
      .then(function (ok) {
        if (!outage) return;
        if (ok) {
          portalBack();
        } else {
          outage.delay = Math.min(outage.delay * 2, RETRY_MAX);
          sayWhy();
          retryLater();
        }
      });
  }

  // Whose connection it is: the browser knows when it has none (the person's Wi-Fi, a train).
  function sayWhy() {
    var text = document.querySelector("#portal-offline .portal-offline__text");
    if (!text) return;
    var said = text.getAttribute(navigator.onLine === false ? "data-label-offline" : "data-label-unreachable");
    if (said && text.textContent !== said) text.textContent = said;
  }

  function portalUnreachable() {
    if (outage) {
      sayWhy();
      return;
    }
    outage = { delay: RETRY_FIRST };
    var back = document.getElementById("portal-back");
    if (back) back.textContent = "";  // said again when the portal is back again
    document.body.classList.add("is-portal-offline");
    var banner = document.getElementById("portal-offline");
    sayWhy();
    if (banner) banner.hidden = false;
    retryLater();
  }

  function portalBack() {
    window.clearTimeout(outage.timer);
    window.clearInterval(outage.ticker);
    outage = null;
    document.body.classList.remove("is-portal-offline");
    var banner = document.getElementById("portal-offline");
    if (banner) banner.hidden = true;
    var back = document.getElementById("portal-back");
    if (back) back.textContent = back.getAttribute("data-label") || "";
    cards.forEach(function (entry) {
      entry.inFlight = false;
      poll(entry);
      schedule(entry);
    });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#portal-offline-retry")) probe();
  });
  // Said as soon as the browser loses its connection, not at the next card's poll; tried again
  // as soon as it is back, not at the next try of the backoff (up to a minute later).
  window.addEventListener("offline", portalUnreachable);
  window.addEventListener("online", function () {
    if (!outage) return;
    sayWhy();
    probe();
  });

  /* ---- a new release of the portal -------------------------------------------------------- */

  // Each card answer names the release that drew it. Once this page's release has not answered
  // for two minutes while another does (an admin upgraded the portal while the page stayed
  // open), the cards come in the new templates while this page keeps the old stylesheet and
  // script: a banner offers to reload, and the page reloads by itself the next time its tab is
  // left (unless the layout is being edited). While a rolling upgrade has both releases
  // answering, nothing is said: the page cannot tell the older from the newer, and a page drawn
  // by a new pod must not be told that it is old. A reload by itself happens at most once per
  // release and five minutes, so a page never loops.
  var RELOADED_KEY = "portal-reloaded-for";
  var RELOAD_AGAIN_AFTER = 5 * 60 * 1000;
  var RELEASE_GONE_AFTER = 2 * 60 * 1000;
  var ownReleaseSeen = Date.now();  // the page itself came from it
  var newRelease = null;

  function noteRelease(built) {
    if (!built || newRelease) return;
    if (built === document.body.getAttribute("data-build")) {
      ownReleaseSeen = Date.now();
      return;
    }
    if (Date.now() - ownReleaseSeen < RELEASE_GONE_AFTER) return;
    newRelease = built;
    var banner = document.getElementById("portal-updated");
    if (banner) banner.hidden = false;
  }

  function reloadedLately(built) {
    try {
      var last = JSON.parse(window.sessionStorage.getItem(RELOADED_KEY) || "null");
      return !!last && last.build === built && Date.now() - last.at < RELOAD_AGAIN_AFTER;
    } catch (error) {
      return false;
    }
  }

  function reloadForRelease(byItself) {
    if (byItself && (reloadedLately(newRelease) || document.body.classList.contains("is-editing-layout"))) return;
    try {
      window.sessionStorage.setItem(RELOADED_KEY, JSON.stringify({ build: newRelease, at: Date.now() }));
    } catch (error) { /* private mode without storage: still reload */ }
    window.location.reload();
  }

  document.addEventListener("visibilitychange", function () {
    if (newRelease && document.visibilityState === "hidden") reloadForRelease(true);
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#portal-updated-reload")) reloadForRelease(false);
  });

  // A card whose data is still being fetched ("loading") asks again soon rather than at its
  // interval: after 2 s, then 4, 8, ... up to the interval.
  // `kept`: the card kept its newer data while the worker that answered fetches anew.
  function pollSoonIfLoading(entry, kept) {
    var content = currentContent(entry.body);
    window.clearTimeout(entry.soonTimer);
    var soon = kept || (content && content.getAttribute("data-poll") === "soon");
    if (!soon || entry.stopped) {
      entry.soonDelay = 0;
      return;
    }
    entry.soonDelay = Math.min((entry.soonDelay || 1000) * 2, entry.interval * 1000);
    entry.soonTimer = window.setTimeout(function () {
      if (document.visibilityState === "visible") poll(entry);
    }, entry.soonDelay);
  }


  /* ---- calm refreshes: only what changed moves, once ---------------------------------------- */

  // A card's new body is merged into the one on the page (the "card-morph" swap, hx-ext on the
  // card body) rather than replacing it: an unchanged row keeps its very nodes (no redraw, no
  // animation, its focus and hover); a new figure or time is written in place, silently; a row
  // that changes state (its class: up to down, firing to resolved) or appears is lit once
  // (is-changed). The merge itself is morph.js's (window.portalMorph); without it, a plain swap.
  var ROWS = "[data-key], .status-row, .status-pill, .incident-note, .alert-row, .incidents-pill, .gauge, " +
    ".task-row, .upcoming__row, .pipeline-row, .review-row";

  function lightUp(node) {
    if (node.nodeType !== 1 || !node.matches(ROWS)) return;
    node.classList.remove("is-changed");
    void node.offsetWidth;  // a second change restarts the light
    node.classList.add("is-changed");
  }

  document.addEventListener("animationend", function (event) {
    if (event.animationName === "changed") event.target.classList.remove("is-changed");
  });

  htmx.defineExtension("card-morph", {
    handleSwap: function (style, target, fragment) {
      var old = style === "innerHTML" && currentContent(target);
      var fresh = fragment.firstElementChild;
      // A first answer (over the skeleton) or something else: a plain swap, cheaper.
      if (!window.portalMorph || !old || old.classList.contains("is-loading") || !fresh ||
          !fresh.classList.contains("widget-content")) {
        return false;
      }
      // Rows light up only between two answers in the same state (ok to ok, not stale to ok).
      var same = old.className === fresh.className;
      var changed = [];
      window.portalMorph.children(target, fragment, changed);
      if (same) changed.forEach(lightUp);
      var content = currentContent(target);
      return content ? [content] : [];
    }
  });

  /* ---- no jump when data arrives ------------------------------------------------------------ */

  // early.js reserved each card's height from the last visit; once a card has its data the
  // reservation is lifted and the card's new height recorded for the next visit.
  var HEIGHTS_KEY = "portal.cardHeights";

  // The heights are read after the next frame, all at once: reading one right after a swap would
  // make the browser lay the page out there and then, once per card.
  var toMeasure = [];

  function rememberHeight(body) {
    var sheet = window.portalReservedHeights;
    if (sheet) {
      for (var i = sheet.cssRules.length - 1; i >= 0; i -= 1) {
        if (sheet.cssRules[i].selectorText === "#" + body.id) sheet.deleteRule(i);
      }
    }
    if (toMeasure.indexOf(body) < 0) toMeasure.push(body);
    if (toMeasure.length === 1) {
      window.requestAnimationFrame(function () { window.setTimeout(saveHeights, 0); });
    }
  }

  function saveHeights() {
    var bodies = toMeasure;
    toMeasure = [];
    try {
      var saved = JSON.parse(window.localStorage.getItem(HEIGHTS_KEY) || "null");
      var lang = document.documentElement.lang;
      if (!saved || saved.width !== window.innerWidth || saved.lang !== lang) {
        saved = { width: window.innerWidth, lang: lang, heights: {} };
      }
      bodies.forEach(function (body) { saved.heights[body.id] = body.offsetHeight; });
      window.localStorage.setItem(HEIGHTS_KEY, JSON.stringify(saved));
    } catch (error) {
      /* nothing to keep it in */
    }
  }

  // A resolved alert's details, opened by the person, open again after the alert fired anew
  // and resolved (a firing alert shows them all, without its <details>): the row, kept by its
  // id through refreshes, holds the wish.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.classList || !details.classList.contains("alert-row__more")) return;
    var row = details.closest(".alert-row");
    if (row) row._moreOpen = details.open;
  }, true);

  function reopenDetails(body) {
    body.querySelectorAll(".alert-row").forEach(function (row) {
      var more = row.querySelector(".alert-row__more");
      if (row._moreOpen && more && !more.open) more.open = true;
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var body = event.detail.elt;
    var entry = body._portalPoll;
    if (!entry) return;
    var content = currentContent(body);
    if (!content) return;
    var request = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!request || request === body) carryNotice(entry, content);
    var ask = asked(choiceOf(entry, content));
    var chose = entry.shownAsk !== undefined && ask !== entry.shownAsk;
    var added = markNewRows(body, content, chose);
    signalTab();  // also for an answer without rows to mark (a failure: its attention is gone)
    raiseAlarms(entry, body, content);
    entry.shownAsk = ask;  // what the card on screen answers
    if (content.getAttribute("data-poll") === "stop") entry.stopped = true;
    controls.restoreTab(body);
    reopenDetails(body);
    rememberHeight(body);
    keepFocusIn(body, entry);
    entry.flaps = content.hasAttribute("data-announce-flaps");
    var card = cardOf(body);
    var words = content.getAttribute("data-announce") || "";
    var pending = content.getAttribute("data-poll") === "soon";
    var back = recovered(card, entry, content, words);
    if (request && request !== body) {
      answeredAction(card, entry, content, words, back, event.detail.xhr);
      return;
    }
    var answersChoice = chose && entry.chosen;
    if (chose) entry.chosen = false;
    if (answersChoice && content.hasAttribute("data-choice-said")) {
      // The person's own filter answered: how many rows it shows, the count being what changed.
      var said = [content.getAttribute("data-choice-said")].concat(back).join(". ");
      sayNow(card.querySelector("[data-live-region]"), entry, said, notedOn(card));
      entry.lastAnnouncement = words;
      return;
    }
    var more = back.concat(entry.announcedOnce ? added : []);
    if (more.length && entry.announcedOnce) {
      // Said with the card's words, once: its next answer, the same words alone, is not news.
      announce(card, (words ? words + ". " : "") + more.join(". "), entry, pending);
      entry.lastAnnouncement = words;
    } else {
      announce(card, words, entry, pending);
    }
  });

  // A card that said it was failing or showing older data says so when it is right again
  // ("… Up to date again"): its usual words alone would not tell the person the trouble is over.
  function recovered(card, entry, content, words) {
    var region = card.querySelector("[data-live-region]");
    var troubled = content.classList.contains("is-stale") || content.classList.contains("is-error");
    var was = entry.troubled;
    entry.troubled = troubled;
    if (troubled || !was || !region || !entry.announcedOnce) return [];
    if (!content.classList.contains("is-ok") && !content.classList.contains("is-empty")) return [];
    return [words ? region.getAttribute("data-recovered") : region.getAttribute("data-recovered-alone")];
  }

  // The card's answer to the person's own action (a status changed from its menu, a month asked
  // for): what the action did is said through the card's live region, there before the answer
  // (a notice that arrives already written is not read by every screen reader), then the card's
  // words if they changed. Its data is as fresh as can be: its next poll waits a whole period,
  // which also leaves the notice on screen that long, and the change this answer tells of does
  // not poll it again (the other cards of its tool poll at once: pollWhatChanged). Unless its
  // data is still on its way (the tool slow to give what the change touched): then it asks
  // again soon, and those answers keep the notice where it was until that whole period is over.
  function answeredAction(card, entry, content, words, back, xhr) {
    var region = card.querySelector("[data-live-region]");
    var notice = content.querySelector(".card-notice");
    var said = [];
    if (notice) said.push(notice.textContent.trim());
    if (words && words !== entry.lastAnnouncement && entry.announcedOnce) said.push(words);
    said = said.concat(back);
    if (region && said.length) sayNow(region, entry, said.join(". "), "");
    entry.lastAnnouncement = words;
    entry.lastPoll = Date.now();
    schedule(entry);
    keepNotice(entry, content.getAttribute("data-poll") === "soon" ? notice : null);
    pollSoonIfLoading(entry, false);
    if (xhr) pollWhatChanged(xhr.getResponseHeader(CHANGED_HEADER), entry);
  }

  // The notice of a change, kept for the card's quicker polls until its own next turn: where it
  // was (the row of the item it is about, else the card's top) and whether it had the focus.
  function keepNotice(entry, notice) {
    var row = notice && notice.closest("[data-key]");
    entry.keptNotice = notice ? {
      node: notice.cloneNode(true),
      row: row ? row.getAttribute("data-key") : null,
      place: notice.parentElement ? notice.parentElement.className.split(" ")[0] : "",
      until: Date.now() + entry.interval * 1000 - 1000,
    } : null;
  }

  function carryNotice(entry, content) {
    var kept = entry.keptNotice;
    if (!kept) return;
    if (Date.now() >= kept.until || content.querySelector(".card-notice")) {
      entry.keptNotice = null;
      return;
    }
    var row = kept.row && content.querySelector("[data-key=\"" + CSS.escape(kept.row) + "\"]");
    var place = row && ((kept.place && row.querySelector("." + CSS.escape(kept.place))) || row);
    var node = kept.node.cloneNode(true);
    if (place) {
      place.appendChild(node);
    } else {  // its item is off the list now: at the card's top, as the server puts it then
      node.className = node.className.split(" ").filter(function (name) {
        return name === "card-notice" || name.indexOf("is-") === 0;
      }).join(" ");
      content.insertBefore(node, content.firstChild);
    }
    var had = entry.focusHad;
    if (had && !had.element.isConnected && had.element.classList && had.element.classList.contains("card-notice")) {
      node.setAttribute("tabindex", "-1");
      node.focus();
      entry.focusHad = null;
    }
  }

  /* ---- what came since the person last looked -------------------------------------------- */

  // A row a refresh brings (a task just assigned to me) was lit for two seconds: whoever looked
  // away missed it among the others. Its title (data-new-slot) now says "Added" until the person
  // has seen it: rested the pointer on it, focused or clicked it. Rows are known by their
  // data-key; what this browser has shown the person (data-viewer: someone else signing in here
  // starts afresh) is kept for SEEN_DAYS, so a task assigned overnight says "Added" in the
  // morning, and one still unseen at a reload says it again. A row is not new when a new sort or
  // filter shows it, nor on a person's very first visit.
  var DATA_STATES = ["is-ok", "is-empty", "is-stale"];
  var SEEN_STORE = "portal.seenRows";
  var SEEN_DAYS = 30;

  function seenStore() {
    var viewer = document.body.getAttribute("data-viewer") || "";
    try {
      var kept = JSON.parse(window.localStorage.getItem(SEEN_STORE) || "null");
      if (kept && kept.viewer === viewer && kept.cards) return kept;
    } catch (error) {
      /* nothing kept, or unreadable: as on a first visit */
    }
    return { viewer: viewer, cards: {} };
  }

  // Each card's rows: key -> the day they were last shown (days since 1970), negative while the
  // row is not yet seen; a row not shown for SEEN_DAYS is forgotten, seen or not.
  function keepSeen(body) {
    if (!body.id || !body._seenRows) return;
    var kept = seenStore();
    var rows = kept.cards[body.id] || {};
    var today = Math.floor(Date.now() / 86400000);
    Object.keys(body._seenRows).forEach(function (key) {
      rows[key] = body._seenRows[key] === "added" ? -today : today;
    });
    Object.keys(rows).forEach(function (key) {
      if (!(Math.abs(rows[key]) >= today - SEEN_DAYS)) delete rows[key];
    });
    kept.cards[body.id] = rows;
    try {
      window.localStorage.setItem(SEEN_STORE, JSON.stringify(kept));
    } catch (error) {
      /* no room, or storage refused: only this page remembers */
    }
  }

  // Returns what to say of the rows this answer brought ("Added: <title>"), for the live region.
  function markNewRows(body, content, choiceChanged) {
    var said = [];
    if (!DATA_STATES.some(function (state) { return content.classList.contains(state); })) return said;
    var first = !body._seenRows;
    var before = first ? seenStore().cards[body.id] : null;  // none: the person's first visit here
    var seen = body._seenRows || (body._seenRows = {});
    var changed = first;
    var word = document.body.getAttribute("data-new-word") || "Added";
    var sentence = document.body.getAttribute("data-added-said") || "Added: {title}";
    body.querySelectorAll("[data-new-slot]").forEach(function (slot) {
      var row = slot.closest("[data-key]");
      var key = row && row.getAttribute("data-key");
      if (!key) return;
      if (!seen[key]) {
        changed = true;
        if (first) seen[key] = before && (!(key in before) || before[key] < 0) ? "added" : "known";
        else seen[key] = choiceChanged ? "known" : "added";
        if (!first && seen[key] === "added") said.push(sentence.replace("{title}", slot.textContent.trim()));
      }
      // still unseen, also when a filter hid the row for a while and shows it again
      if (seen[key] === "added") slot.setAttribute("data-new", word);
    });
    if (changed) keepSeen(body);
    markTabs(body);
    return said;
  }

  // A tab whose panel holds a row not yet seen (a merge request in Mine, while Projects is
  // shown) has a dot: the row's "Added" is out of sight.
  function markTabs(body) {
    body.querySelectorAll("[role=tabpanel][aria-labelledby]").forEach(function (panel) {
      var tab = document.getElementById(panel.getAttribute("aria-labelledby"));
      if (tab) tab.toggleAttribute("data-has-new", !!panel.querySelector("[data-new]"));
    });
    signalTab();
  }

  /* ---- the browser tab: what the page says while it is elsewhere -------------------------- */

  // The dashboard stays open all day in a tab among others. Its title counts the rows not yet
  // seen ("(2) DevSecOps Portal": a task assigned to me, a merge request waiting for me), and its
  // icon gets a red dot while a service is down or a critical alert fires (amber: degraded, a
  // warning), by the data-attention of the cards that are shown (a folded or hidden card does
  // not poll: its data is old).
  var ATTENTION = ["", "warning", "critical"];
  var pageTitle = document.title;
  var pageIcon = null;

  function signalTab() {
    var icon = pageIcon || (pageIcon = document.getElementById("portal-icon"));
    var worst = 0;
    document.querySelectorAll(
      ".widget-card:not(.is-collapsed):not(.is-hidden-card) .widget-content[data-attention]"
    ).forEach(function (content) {
      worst = Math.max(worst, ATTENTION.indexOf(content.getAttribute("data-attention")));
    });
    if (icon) {
      if (!icon.hasAttribute("data-calm")) icon.setAttribute("data-calm", icon.getAttribute("href"));
      var href = icon.getAttribute(worst ? "data-" + ATTENTION[worst] : "data-calm");
      if (href && icon.getAttribute("href") !== href) icon.setAttribute("href", href);
    }
    var unseen = document.querySelectorAll(".widget-card:not(.is-hidden-card) [data-new]").length;
    var title = (unseen ? "(" + unseen + ") " : "") + pageTitle;
    if (document.title !== title) document.title = title;
  }

  /* ---- notifications: news that reaches a person whose page is in the background ---------- */

  // Asked for in the account menu, per browser and person (the page's data-viewer): a service
  // going down or a critical alert starting to fire (the rows a card marks data-alarm) makes a
  // system notification while the page is hidden. What was already so when the page loaded, or
  // came while the person was looking, is not news; one notification per alarm (its tag: two tabs
  // of the dashboard show one).
  var NOTIFY_STORE = "portal.notify";

  function notifyWanted() {
    if (!("Notification" in window) || window.Notification.permission !== "granted") return false;
    try {
      return window.localStorage.getItem(NOTIFY_STORE) === (document.body.getAttribute("data-viewer") || "");
    } catch (error) {
      return false;
    }
  }

  function keepNotifyWish(wanted) {
    try {
      if (wanted) window.localStorage.setItem(NOTIFY_STORE, document.body.getAttribute("data-viewer") || "");
      else window.localStorage.removeItem(NOTIFY_STORE);
    } catch (error) {
      /* storage refused: the wish lasts as long as this page */
    }
  }

  function initNotify() {
    var box = document.getElementById("notify");
    if (!box || !("Notification" in window)) return;
    var toggle = document.getElementById("notify-toggle");
    var said = document.getElementById("notify-said");
    box.hidden = false;
    toggle.checked = notifyWanted();
    toggle.addEventListener("change", function () {
      said.textContent = "";
      if (!toggle.checked) {
        keepNotifyWish(false);
        return;
      }
      var asked = window.Notification.permission === "granted" ? "granted" : window.Notification.requestPermission();
      Promise.resolve(asked).then(function (answer) {
        if (answer === "granted") {
          keepNotifyWish(true);
        } else {
          toggle.checked = false;
          said.textContent = box.getAttribute("data-refused");
        }
      });
    });
  }

  function raiseAlarms(entry, body, content) {
    if (!DATA_STATES.some(function (state) { return content.classList.contains(state); })) return;
    var now = {};
    body.querySelectorAll("[data-alarm]").forEach(function (row) {
      now[row.getAttribute("data-alarm")] = row.getAttribute("data-alarm-text") || "";
    });
    var before = entry.alarms;
    entry.alarms = now;
    if (!before || !document.hidden || !notifyWanted()) return;
    var title = cardOf(body).querySelector(".widget-card__title").textContent;
    var icon = document.getElementById("portal-icon");
    Object.keys(now).forEach(function (key) {
      if (key in before) return;
      try {
        var shown = new window.Notification(title, {
          body: now[key], tag: key, icon: icon ? icon.getAttribute("data-critical") : undefined,
        });
        shown.onclick = function () {
          window.focus();
          shown.close();
        };
      } catch (error) {
        // Chrome on Android has Notification but no constructor (a service worker's only): the
        // wish cannot be met here; the card itself goes on.
        keepNotifyWish(false);
      }
    });
  }

  // Seen in another tab of the same browser: not "Added" here either.
  window.addEventListener("storage", function (event) {
    if (event.key !== SEEN_STORE) return;
    var kept = seenStore();
    cards.forEach(function (entry) {
      var body = entry.body;
      var rows = kept.cards[body.id];
      if (!rows || !body._seenRows) return;
      body.querySelectorAll("[data-new]").forEach(function (slot) {
        var row = slot.closest("[data-key]");
        var key = row && row.getAttribute("data-key");
        if (key && rows[key] > 0) {
          body._seenRows[key] = "known";
          slot.removeAttribute("data-new");
        }
      });
      markTabs(body);
    });
  });

  var resting = null;

  function seenNow(row) {
    var slot = row && row.querySelector("[data-new]");
    if (!slot) return;
    slot.removeAttribute("data-new");
    var body = row.closest(".widget-card__body");
    if (!body || !body._seenRows) return;
    body._seenRows[row.getAttribute("data-key")] = "known";
    keepSeen(body);
    markTabs(body);
  }

  document.addEventListener("focusin", function (event) {
    seenNow(event.target.closest && event.target.closest("[data-key]"));
  });

  document.addEventListener("click", function (event) {
    seenNow(event.target.closest && event.target.closest("[data-key]"));
  });

  // A pointer passing over on its way elsewhere has not read it: it must rest a moment.
  document.addEventListener("mouseover", function (event) {
    var row = event.target.closest && event.target.closest("[data-key]");
    if (!row || !row.querySelector("[data-new]") || (resting && resting.row === row)) return;
    if (resting) window.clearTimeout(resting.timer);
    resting = { row: row, timer: window.setTimeout(function () { seenNow(row); resting = null; }, 1200) };
  });

  document.addEventListener("mouseout", function (event) {
    if (!resting || resting.row.contains(event.relatedTarget)) return;
    window.clearTimeout(resting.timer);
    resting = null;
  });

  // A row that a poll takes off the card (a task someone else closed, an alert gone from the
  // last 24 hours) takes the keyboard's focus with it to the page's body, where a screen reader
  // starts again from the top. The focus goes to the first control of the next row still there,
  // else the one before, else to the card's own button in its header.
  var FOCUSABLE = "a[href], button:not([disabled]), summary, select, input, [tabindex='0']";

  document.addEventListener("htmx:beforeSwap", function (event) {
    var body = event.detail.elt;
    var entry = body && body._portalPoll;
    if (!entry) return;
    entry.focusHad = null;
    if (!body.contains(document.activeElement)) return;
    var row = document.activeElement.closest("[data-key]");
    var near = [];
    for (var after = row && row.nextElementSibling; after; after = after.nextElementSibling) near.push(after);
    for (var before = row && row.previousElementSibling; before; before = before.previousElementSibling) near.push(before);
    entry.focusHad = {
      element: document.activeElement,
      near: near.map(function (node) { return node.getAttribute("data-key"); }).filter(Boolean),
    };
  });

  function keepFocusIn(body, entry) {
    var had = entry.focusHad;
    entry.focusHad = null;
    if (!had || had.element.isConnected || (document.activeElement && document.activeElement !== document.body)) return;
    var target = null;
    had.near.some(function (key) {
      var row = body.querySelector("[data-key=\"" + CSS.escape(key) + "\"]");
      target = row && (row.matches(FOCUSABLE) ? row : row.querySelector(FOCUSABLE));
      return !!target;
    });
    target = target || cardOf(body).querySelector(".card-fold");
    if (target) target.focus();
  }

  // A polite live region per card says when the card's state changes, not on every refresh,
  // and not on the first load (the page has just been announced as a whole). A first answer
  // whose parts are still loading ("soon") is not that first load yet: the next one is.
  function announce(card, text, entry, pending) {
    var region = card.querySelector("[data-live-region]");
    if (!region) return;
    if (!entry.announcedOnce) {
      if (pending) return;
      entry.announcedOnce = true;
      entry.lastAnnouncement = text;
      return;
    }
    // While the card says under it that a choice is not kept (noteChoice), the state it
    // announces says so too: the two answers come in either order, and the later one is read.
    var noted = notedOn(card);
    if (text !== entry.lastAnnouncement) {
      window.clearTimeout(entry.sayLater);
      if (noted) sayNow(region, entry, text, noted);  // an answer to the person's own change
      else if (text) say(region, entry, text);
    }
    entry.lastAnnouncement = text;
  }

  function notedOn(card) {
    var note = card.querySelector("[data-choice-note]");
    return note && !note.hidden && note.textContent ? " " + note.textContent : "";
  }

  // A card whose state may go back and forth all day (data-announce-flaps: a monitor that flaps,
  // down, then degraded, then up, then down again every few minutes; a gauge about its
  // threshold) said so at each change. Words it said lately are not said again when its state
  // comes back to them within SAY_AGAIN_AFTER: they are said once that time has passed since
  // they last were, if the card still says them then and they are not the last words heard from
  // it. New words are said at once, and every other card's words at each change (a pipeline
  // that fails again is news).
  var SAY_AGAIN_AFTER = 10 * 60 * 1000;

  function say(region, entry, text) {
    var said = entry.said || (entry.said = {});
    var wait = said[text] && entry.flaps ? said[text] + SAY_AGAIN_AFTER - Date.now() : 0;
    if (text === entry.lastSaid) return;
    if (wait > 0) {
      entry.sayLater = window.setTimeout(function () { say(region, entry, text); }, wait);
      return;
    }
    sayNow(region, entry, text, "");
  }

  function sayNow(region, entry, text, noted) {
    (entry.said || (entry.said = {}))[text] = Date.now();
    entry.lastSaid = text;
    region.textContent = text + noted;
  }

  /* ---- changes made from a card ----------------------------------------------------------- */

  // A choice that is already made (a task's current status) is aria-disabled, not disabled: the
  // keyboard still reaches it and a screen reader says it is current. Pressing it sends nothing.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[aria-disabled='true']");
    if (button) event.preventDefault();
  }, true);

  // A change sent from inside a card (a status menu) replaces the card's body: focus goes back
  // to the element the form names in data-focus-after, so a keyboard user stays where they were.
  // An item the change took off the list (closed) takes its element with it: focus goes to the
  // same control of the item that followed it, else of the one before it (noted as the change
  // leaves), else to the card's notice, never to the page's body (the next Tab would start from
  // the top of the page).
  function focusAfter(form) {
    return form && form.closest && form.closest("[data-focus-after]");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = focusAfter(event.detail.elt);
    var row = form && form.closest("[data-key]");
    if (!row) return;
    var control = document.getElementById(form.getAttribute("data-focus-after"));
    var selector = control && control.className ? "." + control.className.split(" ")[0] : null;
    var near = [];
    for (var next = row.nextElementSibling; next; next = next.nextElementSibling) near.push(next);
    for (var before = row.previousElementSibling; before; before = before.previousElementSibling) near.push(before);
    form._portalNear = selector ? near.map(function (other) {
      var same = other.querySelector(selector);
      return same && same.id;
    }).filter(Boolean) : [];
  });

  // On the swap itself, not after the settle delay: the button pressed is disabled by the new
  // body, which leaves focus on <body> until it is given back.
  document.addEventListener("htmx:afterSwap", function (event) {
    var form = focusAfter(event.detail.requestConfig && event.detail.requestConfig.elt);
    if (!form) return;
    var target = document.getElementById(form.getAttribute("data-focus-after"));
    (form._portalNear || []).forEach(function (id) { target = target || document.getElementById(id); });
    if (!target) {
      target = event.detail.target.querySelector(".card-notice");
      if (target) target.setAttribute("tabindex", "-1");
    }
    if (!target) return;
    var menu = target.closest("details[data-dropdown]");
    if (menu) menu.open = false;  // the change is made (or said not to be): its menu has done its work
    target.focus();
    toastIfAway(event.detail.target.querySelector(".card-notice"));
  });

  // A change's outcome said where the person is not looking (an item the change took off the
  // list has it at the card's top, off screen on a phone) is shown at the foot of the screen for
  // a while too.
  var TOAST_FOR = 6000;
  var toastTimer = null;

  function toastIfAway(notice) {
    var toast = document.getElementById("portal-toast");
    if (!toast || !notice) return;
    var box = notice.getBoundingClientRect();
    if (box.bottom > 0 && box.top < window.innerHeight) return;  // in view: said there
    toast.className = notice.className.replace(/\btask-row__notice\b/, "") + " portal-toast";
    toast.replaceChildren.apply(toast, Array.prototype.slice.call(notice.cloneNode(true).childNodes));
    toast.hidden = false;
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(function () { toast.hidden = true; }, TOAST_FOR);
  }

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

  // The sign-in page Keycloak could not serve tries again by itself, as it says (its link).
  function initRetryLater() {
    var link = document.querySelector("a[data-retry-after]");
    var seconds = link && Number(link.getAttribute("data-retry-after"));
    if (seconds > 0) window.setTimeout(function () { window.location.assign(link.href); }, seconds * 1000);
  }


  // Each part starts on its own: one that throws (a browser without what it needs, a bug) is
  // said in the console and leaves the others working; above all, the cards still poll.
  function start(name, init) {
    try {
      init();
      return true;
    } catch (error) {
      if (window.console) window.console.error("portal: " + name + " did not start", error);
      return false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    start("retry", initRetryLater);
    start("times", function () { window.portalTimes.start(grid); });
    start("calendar days", function () { window.portalControls.rovingDays(document); });
    start("dropdowns", function () { window.portalControls.initDropdowns(); });
    start("theme switch", function () { window.portalControls.initThemeSwitch(); });
    start("tile filter", function () { window.portalControls.initTileFilter(); });
    start("notifications", initNotify);
    start("zone note", function () { window.portalTimes.initZoneNote(); });
    start("lost change", noteLostChange);
    // The layout editor and the packing (layout.js, packing.js), given what they need from here.
    // Either file missing (blocked, failed to load) fails its own start alone.
    start("layout", function () {
      window.portalLayout.init({
        csrfToken: csrfToken, takeRenewedToken: takeRenewedToken, leaveForLogin: leaveForLogin,
        paused: paused, currentContent: currentContent, poll: poll, schedule: schedule,
        openDropdowns: controls.openDropdowns, signalTab: signalTab, RELOAD_AGAIN_AFTER: RELOAD_AGAIN_AFTER,
        pack: function (grid) { if (window.portalPacking) window.portalPacking.pack(grid); },
        placeOf: function (id) { return window.portalPacking ? window.portalPacking.placeOf(id) : undefined; },
      });
    });
    start("packing", function () { window.portalPacking.init(); });
    // early.js says "the scripts did not start" without it: the cards could not refresh.
    window.portalStarted = start("polling", initPolling);
  });
})();
