// The compare page: hide the rows that did not change (a checkbox), without reloading.
(function () {
  "use strict";
  const box = document.getElementById("only-changed");
  if (!box) return;
  function apply() {
    for (const row of document.querySelectorAll("#compare-table tbody tr")) {
      row.hidden = box.checked && row.dataset.changed !== "yes";
    }
  }
  box.addEventListener("change", apply);
  apply();
})();
