/* Calm refreshes: a card's new body merged into the one on the page instead of replacing it.
   An unchanged row keeps its very nodes (no redraw, no animation, its focus, its hover and an
   open menu); a new figure or time is written in place. portal.js's "card-morph" swap calls it
   (window.portalMorph.children) and lights up what it reports as changed. Without this file a
   card's body is swapped whole. Loaded with `defer` before portal.js; no inline script anywhere
   (a strict Content-Security-Policy). */
(function () {
  "use strict";

  // Children are matched by data-key or id when they have one, else by what part of the card
  // they are (unkeyedMatch). `changed` collects the elements that came or whose class changed.

  function keyOf(node) {
    return node.nodeType === 1 ? node.getAttribute("data-key") || node.id || null : null;
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
  }

  function morphAttributes(old, fresh, changed) {
    Array.prototype.slice.call(fresh.attributes).forEach(function (attr) {
      if (old.getAttribute(attr.name) === attr.value) return;
      if (attr.name === "class") changed.push(old);
      old.setAttribute(attr.name, attr.value);
    });
    Array.prototype.slice.call(old.attributes).forEach(function (attr) {
      // A menu the user opened stays open through a refresh.
      if (attr.name === "open" && old.nodeName === "DETAILS") return;
      if (!fresh.hasAttribute(attr.name)) old.removeAttribute(attr.name);
    });
  }

  function morphNode(old, fresh, changed) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
      return;
    }
    if (old.isEqualNode(fresh)) return;
    morphAttributes(old, fresh, changed);
    // A part that loads its own content once (data-keeps-content: the calendar feed's panel)
    // keeps it: the card's answer only holds its placeholder, which would stay for good.
    if (old.hasAttribute("data-keeps-content")) return;
    morphChildren(old, fresh, changed);
  }

  function isBlank(node) {
    return !!node && node.nodeType === 3 && !/\S/.test(node.nodeValue);
  }

  // What part of a card a node without a key is: an element's tag and first class
  // ("stale-banner", "status-columns"; "status-row is-up" and "status-row is-down" are one part).
  function partOf(node) {
    return node.nodeName + (node.nodeType === 1 ? "." + (node.classList[0] || "") : "");
  }

  // The node on the page that the new body's unkeyed node `fresh` is, from `current` on:
  // `current` when it is the same part, else a later one when only unkeyed nodes stand between
  // (parts that went away: they are removed), else `current` if of the same kind, else none (a
  // part that came). By position alone, a banner that went away (older data, then current data)
  // was merged into the part after it, and that one into the next: all were built anew, and a
  // link that had the keyboard's focus took it to the page's body.
  function unkeyedMatch(parent, current, fresh) {
    if (!current || keyOf(current)) return null;
    if (partOf(current) === partOf(fresh)) return current;
    for (var later = current.nextSibling; later && fresh.nodeType === 1; later = later.nextSibling) {
      if (later.nodeType !== 1) continue;
      if (keyOf(later)) break;
      if (partOf(later) === partOf(fresh)) {
        while (current !== later) {
          var gone = current;
          current = current.nextSibling;
          parent.removeChild(gone);
        }
        return later;
      }
    }
    return sameKind(current, fresh) ? current : null;
  }

  function morphChildren(parent, freshParent, changed) {
    // Children matched by key that the new body no longer has go first, and the blank text
    // between elements lines up with nothing: an element that appears or goes (a card's notice
    // after a change) must not shift the ones after it off their match by position. Matched
    // wrongly, the task list was built anew at the poll after a change: an open status menu
    // closed and the keyboard's focus fell to the page's body.
    var wanted = {};
    Array.prototype.forEach.call(freshParent.children, function (child) {
      var key = keyOf(child);
      if (key) wanted[key] = true;
    });
    var keyed = {};
    Array.prototype.slice.call(parent.children).forEach(function (child) {
      var key = keyOf(child);
      if (key && wanted[key]) keyed[key] = child;
      else if (key) parent.removeChild(child);
    });
    var index = 0;
    var fresh = freshParent.firstChild;
    while (fresh) {
      var following = fresh.nextSibling;
      var current = parent.childNodes[index] || null;
      while (fresh.nodeType === 1 && isBlank(current)) {
        parent.removeChild(current);
        current = parent.childNodes[index] || null;
      }
      var key = keyOf(fresh);
      var match = key ? keyed[key] : unkeyedMatch(parent, current, fresh);
      current = parent.childNodes[index] || null;  // the parts that went away are gone
      if (match && sameKind(match, fresh)) {
        if (key) delete keyed[key];
        if (match !== current) parent.insertBefore(match, current);
        morphNode(match, fresh, changed);
      } else {
        parent.insertBefore(fresh, current);
        changed.push(fresh);
      }
      index += 1;
      fresh = following;
    }
    while (parent.childNodes.length > index) parent.removeChild(parent.lastChild);
  }

  window.portalMorph = { children: morphChildren };
})();
