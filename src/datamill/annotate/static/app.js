// datamill annotate: keyboard shortcuts, answer collection and work-time measurement.
// Plain JS, no build; loaded as a file so the Content-Security-Policy can forbid inline script.
"use strict";

(function () {
  const form = document.getElementById("annotate");
  const help = document.getElementById("help");
  if (!form) return;

  let started = performance.now();
  const questions = Array.from(form.querySelectorAll(".q"));
  const stats = {}; // per question: typing time, keys, pastes
  let current = 0;
  let pending = ""; // digits typed so far toward an option number of several digits

  function stat(name) {
    return (stats[name] = stats[name] || { typing_ms: 0, keys: 0, pastes: 0, pasted_chars: 0, last: 0 });
  }

  function setPending(digits) {
    pending = digits;
    questions.forEach((q) => delete q.dataset.pending);
    if (pending && questions[current]) questions[current].dataset.pending = pending;
  }

  function focusQuestion(i) {
    if (!questions.length) return;
    setPending("");
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
    const s = stat(q.dataset.name);
    const now = performance.now();
    if (s.last && now - s.last < 3000) s.typing_ms += now - s.last;
    s.last = now;
    s.keys += 1;
  });
  form.addEventListener("paste", (e) => {
    const q = e.target.closest && e.target.closest(".q");
    if (!q) return;
    const s = stat(q.dataset.name);
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

  // The option keys of a question are all as long: one digit up to ten options, else as
  // many digits as the count has (templating.option_keys). Returns the whole key once its
  // last digit is typed, null while more digits are to come.
  function optionKey(q, digit) {
    const keys = Array.from(q.querySelectorAll("[data-key]"), (el) => el.dataset.key);
    const width = Math.max(1, ...keys.filter((k) => /^[0-9]+$/.test(k)).map((k) => k.length));
    const typed = pending + digit;
    if (typed.length < width) {
      setPending(typed);
      return null;
    }
    setPending("");
    return typed;
  }

  function rankingKey(q, key) {
    const list = q.querySelector("ol.ranked");
    const item = q.querySelector(`.pool [data-key="${key}"]`);
    if (!item) return false;
    list.appendChild(item);
    if (!q.querySelector(".pool [data-key]")) focusQuestion(current + 1);
    return true;
  }

  function resetRanking(q) {
    const pool = q.querySelector(".pool");
    Array.from(q.querySelectorAll("ol.ranked [data-key]"))
      .sort((a, b) => a.dataset.value - b.dataset.value)
      .forEach((li) => pool.appendChild(li));
  }

  function addTurn(q, focus = true) {
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
    if (focus) ta.focus();
    return ta;
  }

  function addSpan(q) {
    const src = q.querySelector("textarea.source");
    const start = src.selectionStart;
    const end = src.selectionEnd;
    if (end <= start) return;
    const label = q.querySelector(".span-labels input:checked").value;
    // Offsets in code points, as the server counts them (JS strings count UTF-16 units).
    const from = Array.from(src.value.slice(0, start)).length;
    listSpan(q, from, Array.from(src.value.slice(0, end)).length, label);
  }

  function listSpan(q, start, end, label) {
    const text = Array.from(q.querySelector("textarea.source").value).slice(start, end).join("");
    const li = document.createElement("li");
    li.dataset.start = start;
    li.dataset.end = end;
    li.dataset.label = label;
    li.textContent = `${label}: ${text}`;
    q.querySelector("ol.spans").appendChild(li);
  }

  function digitKey(q, digit) {
    const value = Number(digit) || 10; // ratings and strengths: 0 is ten
    switch (q.dataset.type) {
      case "rubric":
        return rubricKey(q, value);
      case "pairwise":
        return checkRadio(q, `input[name$=":strength"][value="${value}"]`);
    }
    if (!["ranking", "label", "span", "multilabel"].includes(q.dataset.type)) return false;
    const key = optionKey(q, digit);
    if (key === null) return true;
    switch (q.dataset.type) {
      case "ranking":
        return rankingKey(q, key);
      case "label":
        if (checkRadio(q, `input[data-key="${key}"]`)) focusQuestion(current + 1);
        return true;
      case "span":
        return checkRadio(q, `input[data-key="${key}"]`);
      default: {
        const box = q.querySelector(`input[data-key="${key}"]`);
        if (box) box.checked = !box.checked;
        return Boolean(box);
      }
    }
  }

  function choose(letter) {
    const here = questions[current];
    const q = here && here.dataset.type === "pairwise" ? here : form.querySelector('.q[data-type="pairwise"]');
    return q ? checkRadio(q, `input[data-key="${letter}"]`) : false;
  }

  // ---- answers the server sent back (it refused them): shown again as they were --------
  function restore(q, value) {
    const pick = (selector) => {
      const input = q.querySelector(selector);
      if (input) input.checked = true;
    };
    const quoted = (v) => JSON.stringify(String(v));
    const list = Array.isArray(value) ? value : [];
    switch (q.dataset.type) {
      case "rubric":
        for (const [crit, v] of Object.entries(value || {}))
          pick(`.crit[data-crit=${quoted(crit)}] input[value=${quoted(v)}]`);
        return;
      case "pairwise":
        if (value && value.choice) pick(`input[name$=":choice"][value=${quoted(value.choice)}]`);
        if (value && value.strength) pick(`input[name$=":strength"][value=${quoted(value.strength)}]`);
        return;
      case "ranking":
        list.forEach((position) => {
          const li = q.querySelector(`.pool [data-value=${quoted(position)}]`);
          if (li) q.querySelector("ol.ranked").appendChild(li);
        });
        return;
      case "label":
        pick(`input[value=${quoted(value)}]`);
        return;
      case "multilabel":
        list.forEach((v) => pick(`input[value=${quoted(v)}]`));
        return;
      case "span":
        list.forEach((s) => s && listSpan(q, Number(s.start), Number(s.end), String(s.label)));
        return;
      case "conversation":
        list.forEach((turn, i) => {
          const ta = i === 0 ? q.querySelector(".turns textarea") : addTurn(q, false);
          ta.value = turn && typeof turn.content === "string" ? turn.content : "";
        });
        return;
      default: {
        const t = q.querySelector("textarea");
        if (t && typeof value === "string") t.value = value;
      }
    }
  }

  function restoreAll() {
    let answers = {};
    let telemetry = {};
    try {
      answers = JSON.parse(form.dataset.answers || "{}") || {};
      telemetry = JSON.parse(form.dataset.telemetry || "{}") || {};
    } catch (e) {
      return 0;
    }
    for (const q of questions) if (answers[q.dataset.name] != null) restore(q, answers[q.dataset.name]);
    // The time and typing already spent on this item count on.
    for (const [name, s] of Object.entries(telemetry.questions || {})) Object.assign(stat(name), s, { last: 0 });
    return Number(telemetry.seconds) > 0 ? Number(telemetry.seconds) * 1000 : 0;
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
    else if (k === "Escape") {
      help.hidden = true;
      setPending("");
    }
    else if (k === "Enter") submit();
    else if (k === "s" || k === "S") document.getElementById("skip").submit();
    else if (k === "j" || k === "ArrowDown") focusQuestion(current + 1);
    else if (k === "k" || k === "ArrowUp") focusQuestion(current - 1);
    else if ("abtABT".includes(k) && k.length === 1) done = choose(k.toLowerCase());
    else if (/^[0-9]$/.test(k) && q) done = digitKey(q, k);
    else if (k === "Backspace" && pending) setPending("");
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
  started -= restoreAll();
  focusQuestion(0);
})();
