// The schedules page: add a schedule (each problem shown at its field), pause, resume, remove.
// Every action is a same-origin JSON POST; the page is reloaded after one succeeds, so what it
// shows is always the server's view.
(function () {
  "use strict";
  const W = window.llmWeb;
  const form = document.getElementById("schedule-form");
  const result = document.getElementById("schedule-result");

  function say(text, isError) {
    W.clear(result);
    result.appendChild(W.el("div", { class: "notice" + (isError ? " error" : "") }, text));
  }

  function clearErrors() {
    for (const box of form.querySelectorAll(".field-error")) W.clear(box);
    for (const field of form.querySelectorAll(".field.has-error")) field.classList.remove("has-error");
  }

  function showProblems(problems) {
    let first = null;
    for (const problem of problems) {
      const box = document.getElementById("error-" + problem.field) || document.getElementById("error-job");
      let text = problem.message;
      if (problem.path && problem.path !== problem.field) text = problem.path + ": " + text;
      if (problem.hint) text += " — " + problem.hint;
      box.appendChild(W.el("div", {}, text));
      box.parentElement.classList.add("has-error");
      if (first === null) first = box.parentElement.querySelector("input, select, textarea");
    }
    if (first) first.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const body = {};
    for (const [name, value] of new FormData(form).entries()) body[name] = String(value);
    // Checked first (an answer of 200 either way), so problems show at their fields before
    // anything is added; the add itself validates again, the job too.
    const checked = await W.fetchJson("/api/schedules/check", { body: body });
    if (checked.ok && checked.data.problems.length) {
      showProblems(checked.data.problems);
      say("The schedule was not added: see the fields marked.", true);
      return;
    }
    const response = await W.fetchJson("/api/schedules", { body: body });
    if (response.ok) {
      window.location.reload();
    } else if (response.data && response.data.problems) {
      showProblems(response.data.problems);
      say("The schedule was not added: see the fields marked.", true);
    } else {
      say((response.data && response.data.error) || "The schedule was not added.", true);
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.getAttribute("data-action");
    const row = button.closest("tr");
    const id = row ? row.getAttribute("data-schedule-id") : "";
    if (action === "remove" && !window.confirm("Remove schedule " + id + "? Its runs stay.")) return;
    button.disabled = true;
    const response = await W.fetchJson(button.getAttribute("data-url"), { body: {} });
    if (response.ok) {
      window.location.reload();
    } else {
      button.disabled = false;
      say((response.data && response.data.error) || action + " failed", true);
    }
  });
})();
