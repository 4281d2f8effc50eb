/* The decision form: only the chosen municipality's chairs, the one on call preselected.
 *
 * Progressive enhancement. Without JavaScript the list shows every municipality's chairs in
 * groups, the one on call marked "(i beredskap nu)", and the server preselects that person when
 * the form comes back with a municipality chosen. With it, choosing a municipality hides the
 * other groups and selects its chair on call (unless a person of that municipality is already
 * chosen). No inline script: CSP allows only 'self'.
 */
(function () {
  "use strict";

  function update(municipality, maker) {
    var chosen = municipality.value;
    var groups = maker.querySelectorAll("optgroup[data-municipality]");
    var keep = null;
    for (var i = 0; i < groups.length; i++) {
      var mine = !chosen || groups[i].getAttribute("data-municipality") === chosen;
      groups[i].hidden = !mine;
      groups[i].disabled = !mine;
      if (mine && chosen) keep = groups[i];
    }
    if (!keep) return;
    var current = maker.selectedOptions.length ? maker.selectedOptions[0] : null;
    if (current && current.parentNode === keep) return;
    var onCall = keep.querySelector("option[data-on-call]");
    maker.value = onCall ? onCall.value : "";
  }

  function init() {
    var municipality = document.getElementById("municipality_id");
    var maker = document.getElementById("decision_maker_id");
    if (!municipality || !maker) return;
    municipality.addEventListener("change", function () { update(municipality, maker); });
    update(municipality, maker);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
