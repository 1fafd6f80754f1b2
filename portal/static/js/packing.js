/* The dashboard's packing: each card in the highest free place of its column(s), so that cards
   of different heights leave no holes. portal.js starts it (window.portalPacking.init) and the
   layout editor asks it to place the cards afresh (pack) or where a card is (placeOf). Loaded
   with `defer` before portal.js; no inline script anywhere (a strict Content-Security-Policy). */
(function () {
  "use strict";

  // CSS gives the grid as many columns as fit (auto-fill); here each card, in the layout's order,
  // takes the highest free place in one column, or, for a wide card, in two side by side where
  // their tops are level ("when there is room": it would otherwise leave a hole beside it), on rows
  // of PACK_ROW px. So cards of different heights leave no holes. When level tops are only found
  // below everything else, a wide card may sit beside a shorter card instead, or come before a
  // narrow card or two, if that makes the page shorter and its holes fewer (bestArrangement).
  // The places are set through the CSSOM (allowed by the CSP, unlike style attributes), only
  // where they changed; they are worked out again whenever a card changes size (data arrives,
  // folded, hidden, widened) or moves.
  // Without script: a plain grid.
  var PACK_ROW = 4;
  var LEVEL = 40;  // rows (160 px): the most a wide card may leave empty beside its top

  function placeIn(columns, first, span, height) {
    // The lowest top (in rows) where `span` columns from `first` are free for `height` rows, and
    // the space it leaves empty above it in those columns.
    var tops = [0];
    for (var c = first; c < first + span; c += 1) {
      columns[c].forEach(function (used) { tops.push(used[1]); });
    }
    tops.sort(function (a, b) { return a - b; });
    var top = tops[tops.length - 1];
    for (var i = 0; i < tops.length; i += 1) {
      var at = tops[i];
      var clear = true;
      for (var k = first; k < first + span && clear; k += 1) {
        clear = columns[k].every(function (used) { return at + height <= used[0] || at >= used[1]; });
      }
      if (clear) { top = at; break; }
    }
    var empty = 0;
    for (var j = first; j < first + span; j += 1) {
      var below = 0;
      columns[j].forEach(function (used) { if (used[1] <= top) below = Math.max(below, used[1]); });
      empty += top - below;
    }
    return { first: first, span: span, top: top, empty: empty };
  }

  function bestPlace(columns, span, height, uneven) {
    // The highest place; for a wide card, only where the tops are level unless `uneven`.
    var best = null;
    for (var first = 0; first + span <= columns.length; first += 1) {
      var place = placeIn(columns, first, span, height);
      if (span > 1 && !uneven && place.empty > LEVEL) continue;
      if (!best || place.top < best.top) best = place;
    }
    return best;
  }

  function isWide(card) {
    return card.classList.contains("widget-card--wide");
  }

  function placeAll(cards, heights, bySpan, count, wideFits, kept, uneven, order) {
    // Each card's place, taken in `order` (indexes; default: the layout's): where it was (`kept`,
    // by id), else the best free one. A wide card measured at both widths (`bySpan`, by id) is
    // placed with the height of the width it gets; those whose ids `uneven` holds may take two
    // columns whose tops are not level. `holes`: the rows left empty above a card in its columns.
    var columns = [];
    for (var c = 0; c < count; c += 1) columns.push([]);
    var places = {};
    var end = 0;
    (order || cards.map(function (card, index) { return index; })).forEach(function (index) {
      var card = cards[index];
      var spans = bySpan[card.id];
      var height = heights[index];
      var was = kept[card.id];
      var place = was ? placeIn(columns, was.first, was.span, height) : null;
      if (!place) {
        var wide = wideFits && isWide(card) &&
          bestPlace(columns, 2, spans ? spans[2] : height, uneven[card.id]);
        place = wide || bestPlace(columns, 1, spans ? spans[1] : height);
        if (spans) height = spans[place.span];
      }
      place.height = height;
      places[card.id] = place;
      for (var k = place.first; k < place.first + place.span; k += 1) columns[k].push([place.top, place.top + height]);
      end = Math.max(end, place.top + height);
    });
    var holes = 0;
    columns.forEach(function (used) {
      var reached = 0;
      used.slice().sort(function (a, b) { return a[0] - b[0]; }).forEach(function (span) {
        holes += Math.max(0, span[0] - reached);
        reached = Math.max(reached, span[1]);
      });
    });
    return { places: places, end: end, holes: holes };
  }

  function wideHeights(cards, gap) {
    // Each wide card's height (in rows) at one and at two columns, by id: its text wraps
    // otherwise. Each width is set for the moment (the first columns, named) and put back before
    // anything is drawn: two layouts of the page, on a fresh arrangement only.
    var wide = cards.filter(isWide);
    var was = wide.map(function (card) { return card.style.gridColumn; });
    var found = {};
    wide.forEach(function (card) { found[card.id] = {}; });
    [1, 2].forEach(function (span) {
      wide.forEach(function (card) { card.style.gridColumn = "1 / span " + span; });
      wide.forEach(function (card) { found[card.id][span] = Math.ceil((card.offsetHeight + gap) / PACK_ROW); });
    });
    wide.forEach(function (card, index) { card.style.gridColumn = was[index]; });
    return found;
  }

  function earlier(order, index, by) {
    // `order` with the card at `index` taken `by` places sooner (never before the first).
    var moved = order.filter(function (i) { return i !== index; });
    var at = Math.max(0, order.indexOf(index) - by);
    moved.splice(at, 0, index);
    return moved;
  }

  function bestArrangement(cards, heights, bySpan, count, wideFits) {
    // Level tops, in the layout's order, unless another arrangement is better by more than
    // LEVEL: the page's height plus the rows it leaves empty between cards (a hole shows; the
    // columns' uneven ends do not). Tried for each wide card (the first three): beside a shorter
    // card (uneven tops), or placed one or two cards sooner, so that it takes the level place
    // under the cards above before a narrow card does (at 1280 px the pipelines card went under
    // the deadlines, leaving a column empty for 640 px beside the metrics). At most 6^3 tries
    // of a few cards each (4 to 5 ms for 8 cards, four of them wide, here), no layout read.
    // Returns the places and the order they were taken in.
    var identity = cards.map(function (card, index) { return index; });
    var wide = wideFits ? identity.filter(function (index) { return isWide(cards[index]); }).slice(0, 3) : [];
    var cost = function (tried) { return tried.end + tried.holes; };
    var first = placeAll(cards, heights, bySpan, count, wideFits, {}, {}, identity);
    var best = { tried: first, order: identity, cost: cost(first) };
    var choices = Math.pow(6, wide.length);
    for (var choice = 1; choice < choices; choice += 1) {
      var order = identity;
      var uneven = {};
      var rest = choice;
      wide.forEach(function (index) {
        var option = rest % 6;
        rest = Math.floor(rest / 6);
        if (option % 2) uneven[cards[index].id] = true;
        if (option >= 2) order = earlier(order, index, option >= 4 ? 2 : 1);
      });
      var tried = placeAll(cards, heights, bySpan, count, wideFits, {}, uneven, order);
      if (cost(tried) < best.cost) best = { tried: tried, order: order, cost: cost(tried) };
    }
    var chosen = best.cost + LEVEL < cost(first) ? best : { tried: first, order: identity };
    return { places: chosen.tried.places, order: chosen.order.map(function (index) { return cards[index].id; }) };
  }

  // Where each card went (by id): a card whose content grows or shrinks stays in its column(s)
  // and only what is below it moves, as in any page; a new arrangement (another number of
  // columns, a card moved, widened, hidden or folded) places every card afresh.
  var packed = { arrangement: "", places: {}, order: [], failing: {}, loading: {} };

  // Until the person first scrolls (wheel, touch), clicks or types, each card that leaves its
  // skeleton places every card afresh: on a first visit the skeletons all have one height, and
  // the places they were given (the pipelines card beside the metrics, as if both were as short)
  // left a hole of a third of a screen once the data came. After that first gesture a card
  // stays where the person saw it, whatever arrives.
  var pageTouched = false;

  // The person's own gestures: not "scroll", which the browser fires by itself too (a reload
  // restoring the position, scroll anchoring as a card above grows).
  var GESTURES = ["wheel", "pointerdown", "keydown", "touchstart"];

  function watchFirstGesture() {
    var touched = function () {
      pageTouched = true;
      GESTURES.forEach(function (type) { window.removeEventListener(type, touched, true); });
    };
    GESTURES.forEach(function (type) {
      window.addEventListener(type, touched, { capture: true, passive: true });
    });
  }

  function arrangementOf(cards, count) {
    return count + ":" + cards.map(function (card) {
      return card.id + (card.classList.contains("widget-card--wide") ? "+" : "") +
        (card.classList.contains("is-collapsed") ? "-" : "");
    }).join(",");
  }

  function setPlace(card, column, row) {
    if (card.style.gridColumn !== column) card.style.gridColumn = column;
    if (card.style.gridRow !== row) card.style.gridRow = row;
  }

  function failingCards(cards) {
    // The cards that show a failure and no data (by id): once one has data, every card is placed
    // afresh, or a page opened during an outage would keep the places of its small error cards.
    var found = {};
    cards.forEach(function (card) { if (card.querySelector(".widget-content.is-error")) found[card.id] = true; });
    return found;
  }

  function loadingCards(cards) {
    // The cards that still show their skeleton (by id).
    var found = {};
    cards.forEach(function (card) { if (card.querySelector(".widget-skeleton")) found[card.id] = true; });
    return found;
  }

  function pack(grid) {
    var style = window.getComputedStyle(grid);
    // The columns the width has room for: a card still placed in a column of a wider window
    // makes the grid list that column too, of no width (portal.css). Counting it kept three
    // columns squeezed into a window narrowed to 700 px.
    var count = style.gridTemplateColumns.split(" ").filter(function (track) {
      return parseFloat(track) > 0;
    }).length || 1;
    var gap = parseFloat(style.columnGap) || 0;
    var wideFits = count > 1 && window.matchMedia("(min-width: 60rem)").matches;
    var cards = Array.prototype.filter.call(grid.querySelectorAll(":scope > .widget-card"), function (card) {
      return card.offsetParent !== null;  // not hidden
    });
    var arrangement = arrangementOf(cards, count);
    var failing = failingCards(cards);
    var recovered = Object.keys(packed.failing).some(function (id) { return !failing[id]; });
    var loading = loadingCards(cards);
    var arrived = !pageTouched && Object.keys(packed.loading).some(function (id) { return !loading[id]; });
    var afresh = arrangement !== packed.arrangement || recovered || arrived;
    // Every height is read before any place is written: reading one after a write would make
    // the browser lay the page out again for each card (on a phone, most of the page's script time).
    var heights = cards.map(function (card) { return Math.ceil((card.offsetHeight + gap) / PACK_ROW); });
    var found;
    if (afresh) {
      found = bestArrangement(cards, heights, wideFits ? wideHeights(cards, gap) : {}, count, wideFits);
    } else {
      // In the order they were first taken, each card where it was.
      var ids = cards.map(function (card) { return card.id; });
      var order = packed.order.map(function (id) { return ids.indexOf(id); });
      found = { places: placeAll(cards, heights, {}, count, wideFits, packed.places, {}, order).places, order: packed.order };
    }
    var places = found.places;
    cards.forEach(function (card) {
      var place = places[card.id];
      setPlace(card, (place.first + 1) + " / span " + place.span, (place.top + 1) + " / span " + place.height);
    });
    packed = { arrangement: arrangement, places: places, order: found.order, failing: failing, loading: loading };
    if (grid.getAttribute("data-columns") !== String(count)) grid.setAttribute("data-columns", String(count));
    grid.classList.add("is-packed", "is-shown");
  }

  function initPacking() {
    var grid = document.getElementById("widget-grid");
    if (!grid) return;
    if (!window.ResizeObserver) {
      grid.classList.add("is-shown");  // a plain grid, shown as it is
      return;
    }
    watchFirstGesture();
    // Both observers call back before the next paint: the cards are never drawn out of place.
    var resized = new ResizeObserver(function () { pack(grid); });
    resized.observe(grid);
    grid.querySelectorAll(":scope > .widget-card").forEach(function (card) { resized.observe(card); });
    new MutationObserver(function () { pack(grid); }).observe(grid, { childList: true });
    window.portalPacks = true;  // early.js leaves the cards hidden until the first pack
  }

  window.portalPacking = {
    init: initPacking,
    pack: pack,
    placeOf: function (id) { return packed.places[id]; },
  };
})();
