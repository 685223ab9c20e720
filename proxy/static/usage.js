// The usage page: reads /v1/usage/summary with the org's token or a signed link and draws it.
// Every value from the server is placed with textContent, never parsed as HTML.
"use strict";

(() => {
  const CREDENTIAL_KEY = "spu.usage.credential";
  const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  const $ = (id) => document.getElementById(id);
  const dateFormat = new Intl.DateTimeFormat("en", {
    year: "numeric", month: "short", day: "numeric", timeZone: "UTC",
  });

  function credentialFromLink() {
    const link = new URLSearchParams(window.location.hash.slice(1)).get("link");
    if (link) {
      sessionStorage.setItem(CREDENTIAL_KEY, link);
      history.replaceState(null, "", window.location.pathname);
    }
  }

  async function api(path, options = {}) {
    const credential = sessionStorage.getItem(CREDENTIAL_KEY);
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (credential) headers.Authorization = `Bearer ${credential}`;
    const response = await fetch(path, { ...options, headers });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function showSignIn(message) {
    $("usage").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    document.body.dataset.state = "signed-out";
  }

  function renderBuckets(balance) {
    const allowance = balance.buckets.subscription;
    $("allowance-left").textContent = allowance.left;
    $("allowance-used").textContent = allowance.used;
    $("allowance-total").textContent = allowance.total;
    const total = Number(allowance.total);
    const usedShare = total > 0 ? Math.min(100, (100 * Number(allowance.used)) / total) : 0;
    $("allowance-bar").style.width = `${usedShare}%`;
    $("plan-tier").textContent = balance.plan.tier;
    $("purchased-left").textContent = balance.buckets.purchased.left;
    $("granted-left").textContent = balance.buckets.granted.left;
    $("available").textContent = balance.available_spus;
    $("held").textContent = balance.held_spus;
    $("debt").textContent = balance.debt_spus;
    $("debt-line").hidden = Number(balance.debt_spus) === 0;
  }

  function renderPeriod(period) {
    if (period.days_left === null) {
      $("period-text").textContent = "No subscription period: the chart shows the last 30 days.";
      $("days-left").textContent = "";
      return;
    }
    const start = dateFormat.format(new Date(period.start));
    const end = dateFormat.format(new Date(period.end));
    $("period-text").textContent = `${start} – ${end}`;
    const days = period.days_left;
    $("days-left").textContent = `${days} ${days === 1 ? "day" : "days"} left`;
  }

  function renderChart(daily) {
    const models = [...new Set(daily.data.map((row) => row.model))].sort();
    const spus = new Map(daily.data.map((row) => [`${row.day}|${row.model}`, Number(row.spus)]));
    const datasets = models.map((model, index) => ({
      label: model,
      data: daily.days.map((day) => spus.get(`${day}|${model}`) || 0),
      backgroundColor: COLORS[index % COLORS.length],
      stack: "spus",
    }));
    const canvas = $("daily-chart");
    const existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: daily.days, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: "SPUs" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
    $("chart-note").textContent = models.length ? "" : "No usage in this period yet.";
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function renderRecent(records) {
    const body = $("recent-calls").querySelector("tbody");
    body.replaceChildren(
      ...records.map((record) => {
        const row = document.createElement("tr");
        row.dataset.requestId = record.request_id;
        row.append(
          cell(record.created_at.replace("T", " ").slice(0, 19)),
          cell(record.model),
          cell(String(record.prompt_tokens)),
          cell(String(record.completion_tokens)),
          cell(record.cost_usd),
          cell(record.spus),
        );
        return row;
      }),
    );
    $("no-calls").hidden = records.length > 0;
  }

  function renderSpendControls(controls) {
    const body = $("key-limits").querySelector("tbody");
    body.replaceChildren(
      ...controls.keys.map((key) => {
        const row = document.createElement("tr");
        row.dataset.keyId = key.key_id;
        const budget = key.budget;
        const used = budget ? String(Number(budget.spent_spus) + Number(budget.held_spus)) : "";
        const resets = budget && budget.window_end ? budget.window_end.replace("T", " ").slice(0, 16) : "";
        row.append(
          cell(key.name || `${key.prefix}…`),
          cell(key.budget_spus === null ? "none" : `${key.budget_spus} per ${key.budget_period}`),
          cell(used),
          cell(budget ? budget.left_spus : ""),
          cell(key.budget_spus === null ? "" : resets || "never"),
          cell(key.rpm === null ? "–" : String(key.rpm)),
          cell(key.tpm === null ? "–" : String(key.tpm)),
        );
        return row;
      }),
    );
    $("no-key-limits").hidden = controls.keys.length > 0;
    const alerts = controls.alerts;
    if (alerts === null) {
      $("alerts-state").textContent = "Low-balance alerts: off.";
    } else {
      const last = alerts.recent[0];
      const lastText = last ? ` Latest: ${last.type} (${last.state}).` : "";
      const thresholds = alerts.thresholds_spus.join(", ") || "none";
      $("alerts-state").textContent = `Low-balance alerts: on, below ${thresholds} SPUs and when depleted.${lastText}`;
    }
    const recharge = controls.auto_recharge;
    if (recharge === null) {
      $("recharge-state").textContent = "Auto-recharge: off.";
    } else {
      const last = recharge.recent[0];
      const lastText = last ? ` Latest: ${last.amount_spus} SPUs, ${last.state}${last.reason ? ` (${last.reason})` : ""}.` : "";
      $("recharge-state").textContent =
        `Auto-recharge: ${recharge.amount_spus} SPUs when below ${recharge.threshold_spus}, at most ${recharge.monthly_cap_spus} a month.${lastText}`;
    }
  }

  async function redirectTo(path, body) {
    $("billing-error").textContent = "";
    try {
      const answer = await api(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      window.location.assign(answer.url);
    } catch (error) {
      $("billing-error").textContent = error.message;
    }
  }

  function renderBilling(config, viaLink) {
    $("billing-actions").hidden = !config.stripe || viaLink;
  }

  async function load() {
    try {
      const [config, summary] = await Promise.all([api("/v1/usage/config"), api("/v1/usage/summary")]);
      $("sign-in").hidden = true;
      $("usage").hidden = false;
      $("sign-out").hidden = false;
      $("org-id").textContent = summary.org_id;
      $("load-error").textContent = "";
      renderBuckets(summary.balance);
      renderPeriod(summary.period);
      renderChart(summary.daily);
      renderRecent(summary.recent);
      renderSpendControls(summary.spend_controls);
      renderBilling(config, summary.via_link);
      document.body.dataset.state = "ready";
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(CREDENTIAL_KEY);
        showSignIn(error.message);
        return;
      }
      $("usage").hidden = false;
      $("load-error").textContent = error.message;
      document.body.dataset.state = "error";
    }
  }

  function start() {
    credentialFromLink();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(CREDENTIAL_KEY, $("token-input").value.trim());
      $("token-input").value = "";
      load();
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(CREDENTIAL_KEY);
      showSignIn("");
    });
    $("buy-credits").addEventListener("click", () =>
      redirectTo("/billing/checkout/credits", { spus: Number($("buy-spus").value) }),
    );
    $("manage-subscription").addEventListener("click", () => redirectTo("/billing/portal", {}));
    if (sessionStorage.getItem(CREDENTIAL_KEY)) {
      load();
    } else {
      showSignIn("");
    }
  }

  start();
})();
