/* Runs in <head>, before the first paint (a strict CSP allows no inline script, hence a file).
   A card's skeleton has the layout of its data but cannot know how many rows will come, so
   each card keeps the height it had on the last visit at this width and in this language
   until its data arrives (portal.js records the heights and lifts the rule): nothing below a
   card jumps. A constructed stylesheet is used because style attributes are forbidden. */
(function () {
  "use strict";

  // The cards wait, unseen, until packing.js has packed them (portal.css): never drawn elsewhere first.
  document.documentElement.classList.add("js-packing");
  // Unless they will not be packed (a script failed to load, or broke before it could): by the
  // end of parsing every deferred script has run or failed, and a listener on window hears
  // DOMContentLoaded after portal.js's own on document. (A script still loading holds that event
  // back; a slow one is waited for, not raced by a timer: portal.css shows the cards after
  // 8 s should it never come.)
  window.addEventListener("DOMContentLoaded", function () {
    var grid = document.getElementById("widget-grid");
    if (grid && !window.portalPacks) grid.classList.add("is-shown");
    // Without htmx or a started portal.js the cards can neither load nor refresh: the page says
    // so (index.html) and their skeletons stop shimmering (portal.css), rather than "loading" for good.
    var failed = document.getElementById("portal-scripts-failed");
    if (grid && failed && !(window.htmx && window.portalStarted)) {
      document.documentElement.classList.add("scripts-failed");
      failed.hidden = false;
    }
  });

  try {
    var saved = JSON.parse(window.localStorage.getItem("portal.cardHeights") || "null");
    if (!saved || !document.adoptedStyleSheets) return;
    if (saved.width !== window.innerWidth || saved.lang !== document.documentElement.lang) return;
    var sheet = new CSSStyleSheet();
    Object.keys(saved.heights || {}).forEach(function (id) {
      var height = Math.round(Number(saved.heights[id]));
      if (/^[a-z0-9-]+$/.test(id) && height > 0 && height < 10000) {
        sheet.insertRule("#" + id + " { min-height: " + height + "px; }", sheet.cssRules.length);
      }
    });
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    window.portalReservedHeights = sheet;
  } catch (error) {
    /* storage disabled or unreadable: the skeleton alone */
  }
})();
