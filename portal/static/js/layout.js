/* The personal layout editor: a person shows, hides, folds, widens and orders their cards, and
   each change is saved at once for every device and tab of theirs. portal.js starts it with
   what it needs from the rest of the page (window.portalLayout.init(core)). Loaded with `defer`
   before portal.js; no inline script anywhere (a strict Content-Security-Policy). */
(function () {
  "use strict";

  // Back on the page after this long away (ms), it asks whether its layout changed meanwhile;
  // a quicker switch between tabs costs no request.
  var LAYOUT_RECHECK_AFTER = 15000;
  // How long (ms) the layout bar keeps saying that a change was saved or a layout followed.
  var LAYOUT_SAID_FOR = 20000;

  // "Edit layout" shows the controls; every change is saved at once (the whole layout, through
  // the guarded write path with the page's CSRF token) and said in the live region. Cards move
  // by drag and drop (native HTML) or by their arrow buttons from the keyboard.
  function initLayout(core) {
    // From portal.js: the page's CSRF token and what a refused save does; the cards' polling;
    // the menus; the tab's title; the packing (packing.js).
    var csrfToken = core.csrfToken, takeRenewedToken = core.takeRenewedToken;
    var leaveForLogin = core.leaveForLogin, RELOAD_AGAIN_AFTER = core.RELOAD_AGAIN_AFTER;
    var paused = core.paused, currentContent = core.currentContent;
    var poll = core.poll, schedule = core.schedule;
    var openDropdowns = core.openDropdowns, signalTab = core.signalTab;
    var pack = core.pack, placeOf = core.placeOf;
    var bar = document.getElementById("layout-bar");
    if (!bar) return;
    var grid = document.getElementById("widget-grid");
    var tileGrid = document.getElementById("tile-grid");
    var toggle = document.getElementById("layout-toggle");
    var status = document.getElementById("layout-status");
    var newTab = document.getElementById("layout-new-tab");
    var reset = document.getElementById("layout-reset");
    var reload = document.getElementById("layout-reload");
    var toggleText = toggle.querySelector("span");
    var editLabel = toggleText.textContent;
    var editing = false;
    var dragged = null;
    var queue = Promise.resolve();
    var pending = 0;  // saves queued or on their way
    var changes = 0;  // changes made on this page, ever (a layout asked for before one is old)
    bar.hidden = false;

    function label(name, values) {
      var text = bar.getAttribute("data-label-" + name) || "";
      Object.keys(values || {}).forEach(function (key) { text = text.replace("{" + key + "}", values[key]); });
      return text;
    }

    // What went well is said, then leaves the heading after a while (the page stays open all
    // day); what went wrong stays until the next change.
    var saidTimer = null;

    function say(text, failed) {
      status.textContent = text;
      status.classList.toggle("is-danger", Boolean(failed));
      window.clearTimeout(saidTimer);
      if (text && !failed) {
        saidTimer = window.setTimeout(function () {
          if (status.textContent === text) status.textContent = "";
        }, LAYOUT_SAID_FOR);
      }
    }

    function cards() {
      return grid ? Array.prototype.slice.call(grid.querySelectorAll(":scope > .widget-card")) : [];
    }

    function tiles() {
      return tileGrid ? Array.prototype.slice.call(tileGrid.querySelectorAll(":scope > .tile-item")) : [];
    }

    function titleOf(card) {
      return card.querySelector(".widget-card__title").textContent.trim();
    }

    function layoutNow() {
      return {
        cards: cards().map(function (card) {
          return {
            slug: card.getAttribute("data-slug"),
            hidden: card.classList.contains("is-hidden-card"),
            collapsed: card.classList.contains("is-collapsed"),
            width: card.getAttribute("data-width") === "wide" ? "wide" : "normal"
          };
        }),
        pinned: tiles().filter(function (item) { return item.classList.contains("is-pinned"); })
          .map(function (item) { return item.getAttribute("data-tile"); }),
        new_tab: Boolean(newTab && newTab.checked)
      };
    }

    function post(url, body, renewed) {
      return window.fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": csrfToken(),
          "X-Layout-Basis": bar.getAttribute("data-basis") || ""
        },
        body: body
      }).then(function (response) {
        // Refused for the page's token alone (the person signed in again in another tab): the
        // answer brings the session's token, and the same save goes again, once.
        var token = response.status === 403 && response.headers.get("X-Portal-CSRF");
        if (token && !renewed) {
          takeRenewedToken(token);
          return post(url, body, true);
        }
        // The session ended meanwhile: the page goes to the login, as a card's poll would send it
        // (the change is not saved: the dashboard it comes back to says so).
        var login = response.status === 401 && response.headers.get("X-Portal-Login");
        if (login) {
          leaveForLogin(login);
          return new Promise(function () {});
        }
        return response.json().then(function (answer) {
          return { ok: response.ok, status: response.status, answer: answer };
        });
      });
    }

    // One save at a time, each sending the layout as it is when its turn comes: the server
    // keeps the last one, which is the page's last state. Each names the saved layout it
    // follows (data-basis); when the layout was changed elsewhere since (another device or
    // tab), the server puts this page's change onto it (below) rather than overwrite it.
    // A save whose answer never came (the network, a proxy) may have been kept: the next save
    // first sends that layout again, which the server accepts as it stands if it was, so that
    // the page learns what it now follows instead of taking its own change for another's.
    // Each save also sends the layout the page showed before it (`base`): when the layout was
    // changed elsewhere since, the server puts this page's change onto that layout and answers
    // with the result, which the page then shows (both changes kept).
    var unanswered = null;
    var base = layoutNow();

    // The page follows the saved layout `basis`; the other tabs of this browser are told, with
    // the layout (none after a reset: they cannot draw the team's default themselves).
    function follow(basis, layout) {
      if (!basis) return;
      bar.setAttribute("data-basis", basis);
      if (otherTabs) otherTabs.postMessage({ basis: basis, layout: layout || null });
    }

    // A save went through: the page now follows it, and shows the layout the server saved when
    // that is this page's change put onto another device's (`answer.layout`). If the page was
    // changed again while that save was on its way, it keeps its own state and the basis it had:
    // the save that change queued is put onto the saved layout in turn, and answered with it.
    function saved(answer, sent) {
      if (answer.layout && JSON.stringify(layoutNow()) !== JSON.stringify(sent)) {
        base = sent;
        return;
      }
      if (answer.layout) show(answer.layout);
      if (reload) reload.hidden = true;  // the page shows the saved layout: nothing to reload for
      base = answer.layout ? layoutNow() : sent;
      follow(answer.basis, base);
    }

    function refused(result) {
      say(result.answer.error, true);
      if (result.status === 409 && reload) reload.hidden = false;
    }

    function save(said) {
      pending += 1;
      changes += 1;
      queue = queue.then(function () {
        var url = bar.getAttribute("data-save-url");
        var first = unanswered === null ? Promise.resolve(true) : post(url, unanswered.body).then(function (result) {
          if (result.status >= 500) {  // not looked at (the database away): still unknown
            refused(result);
            return false;
          }
          if (result.ok) saved(result.answer, unanswered.layout);
          unanswered = null;
          if (result.status === 409) refused(result);  // changed elsewhere indeed
          return result.status !== 409;  // (any other refusal: this change goes as it would have)
        });
        return first.then(function (goOn) {
          if (!goOn) return null;
          var now = layoutNow();
          var body = JSON.stringify(Object.assign({ base: base }, now));
          return post(url, body).then(function (result) {
            if (result.ok) {
              saved(result.answer, now);
              say((said ? said + " " : "") + result.answer.message);
            } else {
              refused(result);
            }
          }, function (error) {
            unanswered = { body: body, layout: now };
            throw error;
          });
        }).catch(function () {
          say(label("failed"), true);
        });
      }).then(function () { pending -= 1; });
    }

    function resume(card) {
      var body = card.querySelector(".widget-card__body");
      var entry = body && body._portalPoll;
      if (!entry || paused(entry)) return;
      var content = currentContent(body);
      var overdue = Date.now() - entry.lastPoll >= entry.interval * 1000;
      if (!content || content.classList.contains("is-loading") || overdue) {
        poll(entry);
        schedule(entry);
      }
    }

    function setEditing(on) {
      editing = on;
      document.body.classList.toggle("is-editing-layout", on);
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggleText.textContent = on ? toggle.getAttribute("data-label-done") || editLabel : editLabel;
      cards().forEach(function (card) {
        if (on) card.setAttribute("draggable", "true");
        else card.removeAttribute("draggable");
      });
    }

    toggle.addEventListener("click", function () { setEditing(!editing); });
    // Escape on the editor's own controls (a card's edit buttons, a tile's pin, the edit bar)
    // leaves the edit mode too, the focus on its toggle; elsewhere (a card's content, a menu, a
    // field) it keeps its own meaning, and the page does not jump to the toggle.
    var EDITOR = ".card-edit, .tile-pin, #layout-bar, #layout-panel";
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || !editing || openDropdowns().length) return;
      var on = event.target;
      if (on !== document.body && !(on && on.closest && on.closest(EDITOR))) return;
      if (on && /^(INPUT|TEXTAREA|SELECT)$/.test(on.tagName)) return;
      setEditing(false);
      toggle.focus();
    }, true);

    // --- cards: move, hide, width, collapse ---
    function setHidden(card, hidden) {
      card.classList.toggle("is-hidden-card", hidden);
      card.querySelector("[data-action='hide']").setAttribute("aria-pressed", hidden ? "true" : "false");
      if (!hidden) resume(card);
      signalTab();
    }

    function setWide(card, wide) {
      card.setAttribute("data-width", wide ? "wide" : "normal");
      card.classList.toggle("widget-card--wide", wide);
      card.querySelector("[data-action='width']").setAttribute("aria-pressed", wide ? "true" : "false");
    }

    // Places the cards again now, after widths changed: no size has changed yet for the packing's
    // observers to hear of (once, after all the changes of a layout followed).
    function packAgain() {
      if (window.portalPacks) pack(grid);
    }

    function setCollapsed(card, collapsed) {
      card.classList.toggle("is-collapsed", collapsed);
      card.querySelector(".widget-card__body").hidden = collapsed;
      card.querySelector("[data-action='collapse']").setAttribute("aria-expanded", collapsed ? "false" : "true");
      if (!collapsed) resume(card);
      signalTab();
    }

    function setPinned(item, pinned) {
      item.classList.toggle("is-pinned", pinned);
      item.querySelector("[data-action='pin']").setAttribute("aria-pressed", pinned ? "true" : "false");
    }

    // The page drawn as `layout` says (a layout saved from this page's change and another's).
    function show(layout) {
      var bySlug = {};
      cards().forEach(function (card) { bySlug[card.getAttribute("data-slug")] = card; });
      var placed = layout.cards.filter(function (choice) { return bySlug[choice.slug]; });
      var order = placed.map(function (choice) { return choice.slug; });
      var shown = cards().map(function (card) { return card.getAttribute("data-slug"); });
      if (order.join(" ") !== shown.slice(0, order.length).join(" ")) {
        var rest = shown.filter(function (slug) { return order.indexOf(slug) < 0; });
        order.concat(rest).forEach(function (slug) { grid.appendChild(bySlug[slug]); });
      }
      placed.forEach(function (choice) {
        var card = bySlug[choice.slug];
        setHidden(card, choice.hidden);
        setCollapsed(card, choice.collapsed);
        setWide(card, choice.width === "wide");
      });
      var byTile = {};
      tiles().forEach(function (item) { byTile[item.getAttribute("data-tile")] = item; });
      var pinned = layout.pinned.filter(function (slug) { return byTile[slug]; });
      var others = tiles().filter(function (item) { return pinned.indexOf(item.getAttribute("data-tile")) < 0; })
        .sort(function (a, b) { return Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index")); });
      pinned.map(function (slug) { return byTile[slug]; }).concat(others).forEach(function (item) {
        setPinned(item, pinned.indexOf(item.getAttribute("data-tile")) >= 0);
        if (tileGrid.lastElementChild !== item) tileGrid.appendChild(item);
      });
      if (newTab && newTab.checked !== Boolean(layout.new_tab)) {
        newTab.checked = Boolean(layout.new_tab);
        opensInNewTab(newTab.checked);
      }
      packAgain();
    }

    function moved(card, focus) {
      var all = cards();
      if (focus) focus.focus();
      save(label("moved", { widget: titleOf(card), position: all.indexOf(card) + 1, count: all.length }));
    }

    function move(card, delta, button) {
      var all = cards();
      var to = all.indexOf(card) + delta;
      if (to < 0 || to >= all.length) {  // said, or the button would look broken
        say(label(to < 0 ? "first" : "last", { widget: titleOf(card) }));
        return;
      }
      grid.insertBefore(card, delta < 0 ? all[to] : all[to].nextSibling);
      moved(card, button);
    }

    if (grid) {
      grid.addEventListener("click", function (event) {
        var button = event.target.closest("button[data-action]");
        if (!button) return;
        var card = button.closest(".widget-card");
        var action = button.getAttribute("data-action");
        if (action === "up" || action === "down") move(card, action === "up" ? -1 : 1, button);
        if (action === "hide") {
          var hidden = !card.classList.contains("is-hidden-card");
          setHidden(card, hidden);
          save(label(hidden ? "hidden" : "shown", { widget: titleOf(card) }));
        }
        if (action === "width") {
          var wide = card.getAttribute("data-width") !== "wide";
          setWide(card, wide);
          packAgain();
          // Wide where there is room (see "packing"): said when there is none, so that the
          // button does not look broken.
          var place = placeOf(card.id);
          var later = wide && window.portalPacks && place && place.span < 2;
          save(label(wide ? (later ? "wide-later" : "wide") : "normal", { widget: titleOf(card) }));
        }
        if (action === "collapse") {
          var folding = !card.classList.contains("is-collapsed");
          setCollapsed(card, folding);
          save(editing ? label(folding ? "folded" : "unfolded", { widget: titleOf(card) }) : "");
        }
      });

      grid.addEventListener("dragstart", function (event) {
        var card = event.target.closest && event.target.closest(".widget-card");
        if (!editing || !card) return;
        dragged = card;
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", card.getAttribute("data-slug"));
        card.classList.add("is-dragging");
      });
      grid.addEventListener("dragover", function (event) {
        if (!dragged) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        var target = event.target.closest(".widget-card");
        cards().forEach(function (card) { card.classList.toggle("is-drop-target", card === target && card !== dragged); });
      });
      grid.addEventListener("drop", function (event) {
        if (!dragged) return;
        event.preventDefault();
        var target = event.target.closest(".widget-card");
        var card = dragged;
        endDrag();
        if (!target || target === card) return;
        var all = cards();
        // The dragged card takes the place of the one it is dropped on.
        grid.insertBefore(card, all.indexOf(card) > all.indexOf(target) ? target : target.nextSibling);
        moved(card, null);
      });
      grid.addEventListener("dragend", endDrag);
    }

    function endDrag() {
      if (dragged) dragged.classList.remove("is-dragging");
      dragged = null;
      cards().forEach(function (card) { card.classList.remove("is-drop-target"); });
    }

    // --- tiles: pinned first, where they open ---
    if (tileGrid) {
      tileGrid.addEventListener("click", function (event) {
        var button = event.target.closest("button[data-action='pin']");
        if (!button) return;
        var item = button.closest(".tile-item");
        var pinned = !item.classList.contains("is-pinned");
        setPinned(item, pinned);
        var others = tiles().filter(function (other) { return other !== item; });
        var lastPinned = others.filter(function (other) { return other.classList.contains("is-pinned"); }).pop();
        var index = Number(item.getAttribute("data-index"));
        var before = pinned
          ? (lastPinned ? lastPinned.nextSibling : tileGrid.firstElementChild)
          : others.filter(function (other) {
            return !other.classList.contains("is-pinned") && Number(other.getAttribute("data-index")) > index;
          })[0] || null;
        tileGrid.insertBefore(item, before);
        button.focus();
        var name = item.querySelector(".tool-tile__name").firstChild.textContent.trim();
        save(label(pinned ? "pinned" : "unpinned", { tool: name }));
      });
    }

    // A card's link to a tool follows the same choice as the tiles. The cards' HTML is shared by
    // everyone who sees the same data (a memo), so the choice is applied as the link is followed.
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest(".widget-card__body a[href]");
      if (!link || link.origin === window.location.origin) return;
      if (newTab && newTab.checked) {
        link.setAttribute("target", "_blank");
        link.setAttribute("rel", "noopener noreferrer");
      } else {
        link.removeAttribute("target");
      }
    }, true);

    function opensInNewTab(on) {
      tiles().forEach(function (item) {
        var link = item.querySelector("a.tool-tile");
        var note = link.querySelector(".tile-new-tab");
        if (on) {
          link.setAttribute("target", "_blank");
          link.setAttribute("rel", "noopener noreferrer");
          if (!note) {
            note = document.createElement("span");
            note.className = "is-sr-only tile-new-tab";
            note.textContent = " " + (bar.getAttribute("data-label-new-tab") || "");
            link.querySelector(".tool-tile__name").appendChild(note);
          }
        } else {
          link.removeAttribute("target");
          link.setAttribute("rel", "noopener");
          if (note) note.remove();
        }
      });
    }

    if (newTab) {
      newTab.addEventListener("change", function () {
        opensInNewTab(newTab.checked);
        save("");
      });
    }

    if (reload) reload.addEventListener("click", function () { window.location.reload(); });

    // The other tabs of this browser learn of a saved layout at once and show it, unless they
    // have a save of their own on its way or a card is being dragged (that save is put onto the
    // newer layout and answered with it, as a page on another device learns it). After a reset
    // they ask for the team's default (catchUp). While a save of theirs is unconfirmed, they say
    // so and offer to reload.
    // One channel per person: a tab still showing someone else's page (a shared browser, the
    // other person logged in in another tab) hears nothing of this person's layout.
    var channel = "portal-layout:" + (bar.getAttribute("data-owner") || "");
    var otherTabs = window.BroadcastChannel ? new window.BroadcastChannel(channel) : null;
    if (otherTabs) {
      otherTabs.addEventListener("message", function (event) {
        var told = event.data && event.data.basis;
        if (!told || told === bar.getAttribute("data-basis")) return;
        if (event.data.layout && free()) {
          follows(event.data.layout, told, label("followed"));
          return;
        }
        if (pending > 0 || dragged) return;
        if (!event.data.layout && free()) {  // a reset: the team's default, asked for
          catchUp(label("followed"));
          return;
        }
        say(label("elsewhere"), true);
        if (reload) reload.hidden = false;
      });
    }

    // A page left open on another device (the laptop since the morning) learns of a layout
    // changed elsewhere when the person comes back to it, after a while away: it asks for the
    // saved layout and shows it, unless a change of its own is on its way or a card is being
    // dragged (that change is put onto the newer layout and answered with it).
    var hiddenSince = null;

    function free() {
      return pending === 0 && !dragged && unanswered === null;
    }

    // The page shows `layout`, saved elsewhere as `basis`, follows it, and says so.
    function follows(layout, basis, said) {
      show(layout);
      bar.setAttribute("data-basis", basis);
      base = layoutNow();
      say(said);
      if (reload) reload.hidden = true;
    }

    // The person's roles changed since the page was drawn (data-access: what they could see
    // then): the page is drawn anew, with the cards and tools they may see now. Not while they
    // edit their layout, and once per change (a page that keeps its key never reloads twice).
    var ACCESS_RELOADED_KEY = "portal-reloaded-for-access";

    function accessChanged(access) {
      if (!access || access === bar.getAttribute("data-access")) return false;
      if (document.body.classList.contains("is-editing-layout")) return false;
      try {
        var last = JSON.parse(window.sessionStorage.getItem(ACCESS_RELOADED_KEY) || "null");
        if (last && last.access === access && Date.now() - last.at < RELOAD_AGAIN_AFTER) return false;
        window.sessionStorage.setItem(ACCESS_RELOADED_KEY, JSON.stringify({ access: access, at: Date.now() }));
      } catch (error) { /* private mode without storage: reload all the same */ }
      window.location.reload();
      return true;
    }

    function catchUp(said) {
      if (!free()) return;
      var asked = { basis: bar.getAttribute("data-basis"), changes: changes };
      window.fetch(bar.getAttribute("data-load-url"), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      }).then(function (response) {
        return response.json().then(function (answer) {
          return accessChanged(answer && answer.access) || !response.ok ? null : answer;
        }, function () { return null; });
      }).then(function (answer) {
        if (!answer || !answer.layout || answer.basis === asked.basis || !free()) return;
        // A change made, or another tab's layout followed, while this was on its way is newer.
        if (changes !== asked.changes || bar.getAttribute("data-basis") !== asked.basis) return;
        follows(answer.layout, answer.basis, said);
      }).catch(function () { /* not now (the network, the session): the next change merges */ });
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        if (hiddenSince === null) hiddenSince = Date.now();
        return;
      }
      var away = hiddenSince === null ? 0 : Date.now() - hiddenSince;
      hiddenSince = null;
      if (away >= LAYOUT_RECHECK_AFTER) catchUp(label("caught-up"));
    });

    document.addEventListener("portal:card-forbidden", function () { catchUp(label("caught-up")); });

    if (reset) {
      reset.addEventListener("click", function () {
        queue = queue.then(function () {
          return post(bar.getAttribute("data-reset-url"), "{}").then(function (result) {
            if (!result.ok) {
              say(result.answer.error, true);
              return;
            }
            var layout = result.answer.layout;
            var basis = result.answer.basis;
            if (otherTabs) otherTabs.postMessage(layout && basis ? { basis: basis, layout: layout } : { basis: "none" });
            if (layout && basis) {
              // Shown in place: the message stays to be read, the focus and the editing stay.
              follows(layout, basis, result.answer.message);
              return;
            }
            say(result.answer.message);
            window.location.reload();  // the default could not be read back: the page draws it
          }, function () {
            say(label("failed"), true);
          });
        });
      });
    }
  }

  window.portalLayout = { init: initLayout };
})();
