// The job editor (/jobs/edit): validate as you type, show problems and the graph, save, run.
(function () {
  "use strict";
  const { el, clear, readJson, fetchJson, debounce, drawGraph, renderProblems } = window.llmWeb;

  const initial = readJson("editor-data");
  const textArea = document.getElementById("config-text");
  const formatSelect = document.getElementById("config-format");
  const statusLine = document.getElementById("editor-status");
  const problemList = document.getElementById("problems");
  const graphBox = document.getElementById("graph-preview");
  const actionResult = document.getElementById("action-result");
  const runButton = document.getElementById("run-button");
  const runForm = document.getElementById("run-form");
  const runInputs = document.getElementById("run-inputs");
  const runOffline = document.getElementById("run-offline");

  let latest = initial.check;
  let sequence = 0;

  // The exact text (an HTML textarea drops a leading newline).
  textArea.value = initial.text;

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function renderCheck(check) {
    latest = check;
    clear(statusLine);
    if (check.ok) {
      statusLine.append("Valid job ", el("code", {}, check.job.job_id), ": ",
                        plural(check.job.tasks, "task"), ".");
    } else {
      statusLine.append(plural(check.problems.length, "problem"), ".");
    }
    renderProblems(problemList, check.problems);
    // While the text does not parse (mid-edit), the last graph stays.
    if (check.graph) {
      drawGraph(graphBox, check.graph, { id: "editor-graph", fit: true });
    } else if (check.job !== null) {
      clear(graphBox);
    }
    if (!runForm.hidden) buildRunInputs();
  }

  async function validate() {
    const mine = ++sequence;
    const { ok, data } = await fetchJson("/api/validate", {
      body: { text: textArea.value, format: formatSelect.value, file: initial.file || "" },
    });
    if (mine !== sequence) return; // a newer check is on its way
    if (!ok) {
      clear(statusLine).append("Could not check: " + (data.error || JSON.stringify(data)));
      return;
    }
    renderCheck(data);
  }

  const validateSoon = debounce(validate, 300);
  textArea.addEventListener("input", validateSoon);
  formatSelect.addEventListener("change", validate);

  function showResult(kind, ...children) {
    clear(actionResult).appendChild(el("div", { class: "notice " + kind }, ...children));
  }

  function showProblems(title, problems) {
    const list = el("ul", { class: "problems" });
    renderProblems(list, problems || []);
    showResult("error", title, list);
  }

  document.getElementById("save-button").addEventListener("click", async () => {
    const { ok, status, data } = await fetchJson("/api/jobs", {
      body: { text: textArea.value, format: formatSelect.value },
    });
    if (ok) {
      showResult("ok", "Saved as job ", el("a", { href: data.url }, data.job_id), ".");
    } else if (status === 422) {
      showProblems("Not saved: fix these first.", data.problems);
    } else {
      showResult("error", "Not saved: " + (data.error || data.detail || status));
    }
  });

  function inputText(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function buildRunInputs() {
    clear(runInputs);
    const inputs = (latest && latest.inputs) || [];
    if (!inputs.length) {
      runInputs.appendChild(el("p", { class: "muted" }, "This job has no input variables."));
      return;
    }
    inputs.forEach((input, index) => {
      const id = "run-input-" + index;
      runInputs.appendChild(el("div", { class: "field" },
        el("label", { for: id }, input.name),
        el("input", {
          type: "text", id: id, value: inputText(input.default),
          dataset: { name: input.name, json: typeof input.default === "string" ? "0" : "1" },
        }),
      ));
    });
  }

  function readRunInputs() {
    const values = {};
    for (const field of runInputs.querySelectorAll("input[data-name]")) {
      let value = field.value;
      if (field.dataset.json === "1") {
        try { value = JSON.parse(field.value); } catch (error) { /* keep the text */ }
      }
      values[field.dataset.name] = value;
    }
    return values;
  }

  function toggleRunForm(show) {
    runForm.hidden = !show;
    runButton.setAttribute("aria-expanded", String(show));
    if (show) {
      buildRunInputs();
      const first = runForm.querySelector("input, button");
      if (first) first.focus();
    }
  }

  runButton.addEventListener("click", () => toggleRunForm(runForm.hidden));
  document.getElementById("run-cancel").addEventListener("click", () => {
    toggleRunForm(false);
    runButton.focus();
  });

  runForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = document.getElementById("run-submit");
    submit.disabled = true;
    try {
      const { ok, status, data } = await fetchJson("/api/runs", {
        body: {
          text: textArea.value, format: formatSelect.value,
          inputs: readRunInputs(), offline: runOffline.checked,
        },
      });
      if (ok) {
        showResult("ok", "Started run ", el("a", { href: data.url }, data.run_id), "…");
        window.location.assign(data.url);
      } else if (status === 422) {
        showProblems("Not started: fix these first.", data.problems);
      } else {
        showResult("error", "Not started: " + (data.error || data.detail || status));
      }
    } finally {
      submit.disabled = false;
    }
  });
})();
