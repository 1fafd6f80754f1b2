/* The page's controls, which need nothing from the cards' life cycle: the theme switch, the
   tools' filter, the dropdown menus (the user menu, a task's status menu), the tabs inside a
   card and the calendar's days. Without this file the theme switch is a plain link, the menus
   plain <details>, every calendar day a stop of its own, and a card's tabs stay on the first.
   portal.js starts them and, after a card's refresh, gives a card back its chosen tab
   (window.portalControls). Loaded with `defer` before portal.js; no inline script anywhere (a
   strict Content-Security-Policy). */
(function () {
  "use strict";

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
      // Enter opens the tool when exactly one matches (in a new tab if the user chose so).
      if (event.key === "Enter") {
        var shown = items.filter(function (item) { return !item.hidden; });
        if (shown.length !== 1 || !input.value.trim()) return;
        event.preventDefault();
        shown[0].querySelector("a.tool-tile").click();
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

  /* ---- dropdown menus ------------------------------------------------------------------------ */

  // The user menu and each task's status menu are <details data-dropdown>: they work without
  // script. This closes an open one as a menu closes: on a click outside it, on Escape (the focus
  // back on its button), and when the keyboard's focus moves out of it.
  function openDropdowns() {
    return Array.prototype.slice.call(document.querySelectorAll("details[data-dropdown][open]"));
  }

  function initDropdowns() {
    document.addEventListener("click", function (event) {
      openDropdowns().forEach(function (menu) {
        if (!menu.contains(event.target)) menu.open = false;
      });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      openDropdowns().forEach(function (menu) {
        var within = menu.contains(document.activeElement) || document.activeElement === document.body;
        menu.open = false;
        if (within) menu.querySelector("summary").focus();
      });
    });
    document.addEventListener("focusout", function (event) {
      var menu = event.target.closest && event.target.closest("details[data-dropdown][open]");
      // No relatedTarget: the focus went nowhere (a click on the page, a card redrawn): the
      // click above, or the redraw, decides.
      if (menu && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
    });
  }

  /* ---- tabs inside a card ------------------------------------------------------------------- */

  // A card's [role=tablist][data-tabs]: a click, or the arrow keys, Home and End on a tab, select
  // it (roving tabindex: only the selected tab is in the Tab order) and show its panel. The
  // choice is kept on the stable card wrapper, so a refresh of the card's body keeps it.
  function selectTab(tab, focus) {
    var list = tab.closest("[role=tablist]");
    if (!list) return;
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    var card = tab.closest(".widget-card");
    if (card) card.setAttribute("data-tab", tab.id);
    if (focus) tab.focus();
  }

  function restoreTab(body) {
    var card = body.closest(".widget-card");
    var chosen = card && card.getAttribute("data-tab");
    var tab = chosen && document.getElementById(chosen);
    if (tab && body.contains(tab) && tab.getAttribute("aria-selected") !== "true") selectTab(tab, false);
  }

  document.addEventListener("click", function (event) {
    var tab = event.target.closest && event.target.closest("[data-tabs] [role=tab]");
    if (tab) selectTab(tab, false);
  });

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[data-tabs] [role=tab]");
    if (!tab || event.altKey || event.ctrlKey || event.metaKey) return;
    var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    var index = tabs.indexOf(tab);
    var next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    selectTab(tabs[(next + tabs.length) % tabs.length], true);
  });

  /* ---- the calendar's days: one stop for Tab, the arrows between them ---------------------- */

  // A month holds a dozen days with deadlines, each a button: Tab stops at one of them (the one
  // last moved to, kept through the card's refreshes), and the arrow keys, Home and End go from
  // one to another. Without script every day is a stop of its own.
  function rovingDays(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll(".month__grid").forEach(function (grid) {
      var days = grid.querySelectorAll(".day__open");
      if (!days.length) return;
      var body = grid.closest(".widget-card__body") || grid;
      var kept = body._currentDay && grid.querySelector('.day__open[popovertarget="' + body._currentDay + '"]');
      var current = kept || days[0];
      days.forEach(function (day) { day.tabIndex = day === current ? 0 : -1; });
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) { rovingDays(event.detail.elt); });

  document.addEventListener("keydown", function (event) {
    var day = event.target.closest && event.target.closest(".month__grid .day__open");
    if (!day || event.altKey || event.ctrlKey || event.metaKey) return;
    var days = Array.prototype.slice.call(day.closest(".month__grid").querySelectorAll(".day__open"));
    var at = days.indexOf(day);
    var to = { ArrowLeft: at - 1, ArrowUp: at - 1, ArrowRight: at + 1, ArrowDown: at + 1, Home: 0, End: days.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    if (to < 0 || to >= days.length) return;
    days.forEach(function (other) { other.tabIndex = -1; });
    days[to].tabIndex = 0;
    days[to].focus();
    var body = day.closest(".widget-card__body");
    if (body) body._currentDay = days[to].getAttribute("popovertarget");
  });

  window.portalControls = {
    initThemeSwitch: initThemeSwitch,
    initTileFilter: initTileFilter,
    initDropdowns: initDropdowns,
    openDropdowns: openDropdowns,
    rovingDays: rovingDays,
    restoreTab: restoreTab
  };
})();
