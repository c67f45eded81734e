// The mutes view (#/mutes): the one-off mutes not over yet, with a form to add one and a
// button to delete each, and the config's maintenance windows. While a mute or window covers
// a series, its events are recorded and marked muted, and notify nobody.

const DURATIONS = [["30m", "30 min"], ["1h", "1 hour"], ["2h", "2 hours"], ["4h", "4 hours"], ["1d", "1 day"], ["7d", "7 days"]];

export function mutesView({ h, api, when, select, rerender }) {
  const matchers = h("input", { type: "text", id: "mute-matchers", required: true, autocomplete: "off",
    placeholder: '{instance="db-1"}', "aria-describedby": "mute-help" });
  const duration = select("mute-duration", DURATIONS, "1h");
  const comment = h("input", { type: "text", id: "mute-comment", autocomplete: "off", maxlength: "1000" });
  const said = h("p", { class: "said", id: "mute-said", role: "status" });
  const mutes = h("div");
  const windows = h("div");
  let reload = () => {};

  async function add(e) {
    e.preventDefault();
    try {
      const made = await api("api/v1/mutes", {}, { method: "POST", body: {
        matchers: matchers.value.trim(), duration: duration.value, comment: comment.value.trim() } });
      said.className = "said";
      said.textContent = `Muted ${made.matchers} until ${when(made.ends_at)}.`;
      matchers.value = "";
      comment.value = "";
      reload();
    } catch (err) {
      said.className = "said problem";
      said.textContent = err.message;
    }
  }

  async function remove(m) {
    try {
      await api(`api/v1/mutes/${encodeURIComponent(m.id)}`, {}, { method: "DELETE" });
      said.className = "said";
      said.textContent = `Deleted the mute of ${m.matchers}.`;
      reload();
    } catch (err) {
      said.className = "said problem";
      said.textContent = err.message;
    }
  }

  const table = (cols, rows) => h("div", { class: "scroll" }, h("table", { class: "list" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)));
  const state = (active) => h("span", { class: `badge ${active ? "active" : "muted"}` }, active ? "Active" : "Later");

  return {
    title: "Mutes",
    mount(main) {
      main.append(
        h("h1", { tabindex: "-1" }, "Mutes"),
        h("form", { class: "filters mute-form", onsubmit: add },
          h("div", { class: "field wide" }, h("label", { for: "mute-matchers" }, "Series (PromQL selector)"), matchers,
            h("span", { class: "hint", id: "mute-help" }, 'Labels of the series, such as {instance="db-1", job="node"}; the query\'s name is the label query.')),
          h("div", { class: "field" }, h("label", { for: "mute-duration" }, "For"), duration),
          h("div", { class: "field wide" }, h("label", { for: "mute-comment" }, "Comment"), comment),
          h("div", { class: "field" }, h("span", { class: "hint" }, " "), h("button", { type: "submit", id: "mute-add" }, "Mute"))),
        said,
        h("h2", {}, "Mutes"), mutes,
        h("h2", {}, "Maintenance windows"),
        h("p", { class: "hint" }, "Set in the config file (maintenance:)."), windows);
    },
    async refresh(current, again) {
      reload = again;
      const got = await api("api/v1/mutes");
      if (!current()) return;
      rerender(mutes, [got.mutes.length ? table(["State", "Series", "From", "Until", "Comment", "By", ""],
        got.mutes.map((m) => h("tr", { "data-id": m.id },
          h("td", {}, state(m.active)), h("td", {}, h("code", {}, m.matchers)), h("td", {}, when(m.starts_at)),
          h("td", {}, when(m.ends_at)), h("td", {}, m.comment), h("td", {}, m.author),
          h("td", {}, h("button", { type: "button", "data-key": `delete-${m.id}`, onclick: () => remove(m) }, "Delete")))))
        : h("p", { class: "empty" }, "No mutes set.")]);
      rerender(windows, [got.windows.length ? table(["State", "Name", "Series", "When", "Next", "Model"],
        got.windows.map((w) => h("tr", {},
          h("td", {}, state(w.active)), h("th", { scope: "row" }, w.name), h("td", {}, h("code", {}, w.matchers)),
          h("td", {}, `${w.schedule} (${w.time_zone})`),
          h("td", {}, w.next ? `${when(w.next.starts_at)} to ${when(w.next.ends_at)}` : "–"),
          h("td", {}, w.learn ? "learns" : "does not learn"))))
        : h("p", { class: "empty" }, "No maintenance windows configured.")]);
    },
  };
}
