// datamill annotate: keyboard shortcuts, answer collection and work-time measurement.
// Plain JS, no build; loaded as a file so the Content-Security-Policy can forbid inline script.
"use strict";

(function () {
  const form = document.getElementById("annotate");
  const help = document.getElementById("help");
  if (!form) return;

  const started = performance.now();
  const questions = Array.from(form.querySelectorAll(".q"));
  const stats = {}; // per question: typing time, keys, pastes
  let current = 0;

  function stat(q) {
    const name = q.dataset.name;
    return (stats[name] = stats[name] || { typing_ms: 0, keys: 0, pastes: 0, pasted_chars: 0, last: 0 });
  }

  function focusQuestion(i) {
    if (!questions.length) return;
    current = Math.max(0, Math.min(questions.length - 1, i));
    questions.forEach((q, j) => q.classList.toggle("current", j === current));
    questions[current].focus({ preventScroll: false });
  }

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"));
  }

  // Typing time: the gaps between keystrokes in a text field, counting only gaps under 3 s.
  form.addEventListener("keydown", (e) => {
    const q = e.target.closest && e.target.closest(".q");
    if (!q || !typing(e.target) || e.target.classList.contains("source")) return;
    const s = stat(q);
    const now = performance.now();
    if (s.last && now - s.last < 3000) s.typing_ms += now - s.last;
    s.last = now;
    s.keys += 1;
  });
  form.addEventListener("paste", (e) => {
    const q = e.target.closest && e.target.closest(".q");
    if (!q) return;
    const s = stat(q);
    s.pastes += 1;
    s.pasted_chars += (e.clipboardData ? e.clipboardData.getData("text") : "").length;
  });

  // ---- widgets -------------------------------------------------------------------------
  function checkRadio(container, selector) {
    const input = container.querySelector(selector);
    if (input) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
    return Boolean(input);
  }

  function rubricKey(q, digit) {
    const rows = Array.from(q.querySelectorAll(".crit"));
    let row = rows.find((r) => r.classList.contains("active")) || rows[0];
    if (!checkRadio(row, `input[value="${digit}"]`)) return false;
    const next = rows[rows.indexOf(row) + 1];
    row.classList.remove("active");
    if (next) next.classList.add("active");
    else {
      rows[0].classList.add("active");
      focusQuestion(current + 1);
    }
    return true;
  }

  function rankingKey(q, digit) {
    const list = q.querySelector("ol.ranked");
    const item = q.querySelector(`.pool [data-key="${digit}"]`);
    if (!item) return false;
    list.appendChild(item);
    if (!q.querySelector(".pool [data-key]")) focusQuestion(current + 1);
    return true;
  }

  function resetRanking(q) {
    const pool = q.querySelector(".pool");
    Array.from(q.querySelectorAll("ol.ranked [data-key]"))
      .sort((a, b) => a.dataset.key - b.dataset.key)
      .forEach((li) => pool.appendChild(li));
  }

  function addTurn(q) {
    const turns = q.querySelector(".turns");
    const n = turns.querySelectorAll("textarea").length;
    const role = n % 2 === 0 ? "user" : "assistant";
    const label = document.createElement("label");
    label.className = "turn";
    label.textContent = role + " ";
    const ta = document.createElement("textarea");
    ta.dataset.role = role;
    ta.rows = 3;
    label.appendChild(ta);
    turns.appendChild(label);
    ta.focus();
  }

  function addSpan(q) {
    const src = q.querySelector("textarea.source");
    const start = src.selectionStart;
    const end = src.selectionEnd;
    if (end <= start) return;
    const label = q.querySelector(".span-labels input:checked").value;
    const li = document.createElement("li");
    // Offsets in code points, as the server counts them (JS strings count UTF-16 units).
    li.dataset.start = Array.from(src.value.slice(0, start)).length;
    li.dataset.end = Array.from(src.value.slice(0, end)).length;
    li.dataset.label = label;
    li.textContent = `${label}: ${src.value.slice(start, end)}`;
    q.querySelector("ol.spans").appendChild(li);
  }

  function digitKey(q, digit) {
    switch (q.dataset.type) {
      case "rubric":
        return rubricKey(q, digit);
      case "pairwise":
        return checkRadio(q, `input[name$=":strength"][value="${digit}"]`);
      case "ranking":
        return rankingKey(q, digit);
      case "label":
        if (checkRadio(q, `input[data-key="${digit}"]`)) focusQuestion(current + 1);
        return true;
      case "span":
        return checkRadio(q, `input[data-key="${digit}"]`);
      case "multilabel": {
        const box = q.querySelector(`input[data-key="${digit}"]`);
        if (box) box.checked = !box.checked;
        return Boolean(box);
      }
    }
    return false;
  }

  function choose(letter) {
    const here = questions[current];
    const q = here && here.dataset.type === "pairwise" ? here : form.querySelector('.q[data-type="pairwise"]');
    return q ? checkRadio(q, `input[data-key="${letter}"]`) : false;
  }

  // ---- answers ---------------------------------------------------------------------------
  function answer(q) {
    const checked = (sel) => q.querySelector(sel + ":checked");
    switch (q.dataset.type) {
      case "rubric": {
        const out = {};
        q.querySelectorAll(".crit").forEach((row) => {
          const r = row.querySelector("input:checked");
          if (r) out[row.dataset.crit] = Number(r.value);
        });
        return Object.keys(out).length ? out : null;
      }
      case "pairwise": {
        const c = checked('input[name$=":choice"]');
        const s = checked('input[name$=":strength"]');
        return c ? { choice: c.value, strength: s ? Number(s.value) : null } : null;
      }
      case "ranking": {
        const order = Array.from(q.querySelectorAll("ol.ranked [data-value]")).map((li) => Number(li.dataset.value));
        return order.length ? order : null;
      }
      case "label": {
        const c = checked("input");
        return c ? c.value : null;
      }
      case "multilabel":
        return Array.from(q.querySelectorAll("input:checked")).map((i) => i.value);
      case "span":
        return Array.from(q.querySelectorAll("ol.spans li")).map((li) => ({
          message: Number(q.dataset.message),
          start: Number(li.dataset.start),
          end: Number(li.dataset.end),
          label: li.dataset.label,
        }));
      case "conversation": {
        const turns = Array.from(q.querySelectorAll(".turns textarea"))
          .filter((t) => t.value.trim())
          .map((t) => ({ role: t.dataset.role, content: t.value }));
        return turns.length ? turns : null;
      }
      default: {
        const t = q.querySelector("textarea");
        return t && t.value.trim() ? t.value : null;
      }
    }
  }

  function submit() {
    const answers = {};
    for (const q of questions) {
      const a = answer(q);
      if (a !== null) answers[q.dataset.name] = a;
      else if (q.dataset.required === "yes") {
        // Nothing is sent, so nothing typed is lost: the question waits, highlighted.
        q.classList.add("missing");
        const why = `Question "${q.dataset.name}" needs an answer.`;
        document.getElementById("missing").textContent = why;
        focusQuestion(questions.indexOf(q));
        return;
      }
    }
    const per = {};
    for (const [name, s] of Object.entries(stats)) {
      per[name] = { typing_ms: Math.round(s.typing_ms), keys: s.keys, pastes: s.pastes, pasted_chars: s.pasted_chars };
    }
    form.querySelector("input[name=answers]").value = JSON.stringify(answers);
    form.querySelector("input[name=telemetry]").value = JSON.stringify({
      seconds: (performance.now() - started) / 1000,
      questions: per,
    });
    form.submit();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });

  // ---- keyboard --------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      }
      return;
    }
    const el = document.activeElement;
    if (el && el.classList.contains("source") && e.key === "h") {
      e.preventDefault();
      addSpan(el.closest(".q"));
      return;
    }
    if (typing(el)) {
      if (e.key === "Escape") el.closest(".q").focus();
      return;
    }
    const q = questions[current];
    const k = e.key;
    let done = true;
    if (k === "?") help.hidden = !help.hidden;
    else if (k === "Escape") help.hidden = true;
    else if (k === "Enter") submit();
    else if (k === "s" || k === "S") document.getElementById("skip").submit();
    else if (k === "j" || k === "ArrowDown") focusQuestion(current + 1);
    else if (k === "k" || k === "ArrowUp") focusQuestion(current - 1);
    else if ("abtABT".includes(k) && k.length === 1) done = choose(k.toLowerCase());
    else if (/^[0-9]$/.test(k) && q) done = digitKey(q, Number(k) || 10); // 0 is the 10th
    else if (k === "Backspace" && q && q.dataset.type === "ranking") resetRanking(q);
    else if (k === "Backspace" && q && q.dataset.type === "span") {
      const last = q.querySelector("ol.spans li:last-child");
      if (last) last.remove();
    } else if (k === "+" && q && q.dataset.type === "conversation") addTurn(q);
    else if ((k === "i" || k === "e") && q && q.querySelector("textarea")) {
        q.querySelector("textarea").focus();
    } else done = false;
    if (done) e.preventDefault();
  });

  // The text to highlight in is a textarea so that the keyboard can move and select in it
  // (Shift+arrows), but nothing may change it.
  form.querySelectorAll("textarea.source").forEach((src) =>
    src.addEventListener("beforeinput", (e) => e.preventDefault()));

  questions.forEach((q, i) => q.addEventListener("focusin", () => {
    current = i;
    questions.forEach((o, j) => o.classList.toggle("current", j === i));
  }));
  focusQuestion(0);
})();
