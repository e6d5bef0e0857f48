// The SKU page's price history on a true time axis: points are placed by their time (x = epoch ms on a
// linear scale, so no date adapter is needed), each series held until its next point. Our price, the
// cheapest confirmed competitor and the floor as lines; price changes and proposals as markers.
// Drawn again whenever htmx swaps in a fresh #sku-live part (after a decision on the page).
(() => {
  const won = (v) => (v === null || v === undefined ? "—" : Math.round(v).toLocaleString("ko-KR") + "원");
  const format = (options) => new Intl.DateTimeFormat("ko-KR", { hour12: false, timeZone: "Asia/Seoul", ...options });
  const when = format({ month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" });
  // Tick labels as fine as the span needs: seconds within an hour, the hour within two days, else the day.
  const tickFormat = (span) =>
    span < 3_600_000 ? format({ hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : span < 2 * 86_400_000 ? when
        : format({ year: "2-digit", month: "numeric", day: "numeric" });
  const PROPOSAL_COLOURS = { pending: "#b76e00", applied: "#1f8a4c", rejected: "#c62828" };

  function draw(root) {
    const canvas = root.querySelector ? root.querySelector("#pr-history-chart") : null;
    const source = document.getElementById("pr-history-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
    const old = Chart.getChart(canvas);
    if (old) old.destroy();
    const data = JSON.parse(source.textContent);
    const xs = data.ours.map((p) => p.x);
    const ticks = tickFormat(xs.length ? Math.max(...xs) - Math.min(...xs) : 0);
    const line = (label, points, colour, extra) => ({
      type: "line", label, data: points, stepped: true, borderColor: colour, backgroundColor: colour,
      pointRadius: 0, pointHitRadius: 6, borderWidth: 2, spanGaps: false, ...extra,
    });
    new Chart(canvas, {
      data: {
        datasets: [
          line("우리 가격", data.ours, "#2f5bea"),
          line("가장 싼 확정 경쟁가", data.competitor, "#b76e00", { borderDash: [5, 4] }),
          line("하한가", data.floor, "#c62828", { borderDash: [2, 3], borderWidth: 1.5 }),
          {
            type: "scatter", label: "가격 변경", data: data.changes, pointStyle: "rectRot", pointRadius: 6,
            borderColor: "#2f5bea", backgroundColor: "#2f5bea",
          },
          {
            type: "scatter", label: "제안", data: data.proposals, pointStyle: "triangle", pointRadius: 7,
            backgroundColor: data.proposals.map((p) => PROPOSAL_COLOURS[p.status] || "#6b7385"),
            borderColor: "#fff",
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        parsing: { xAxisKey: "x", yAxisKey: "y" },
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", ticks: { callback: (v) => ticks.format(new Date(v)), maxRotation: 0, autoSkipPadding: 24 } },
          y: { ticks: { callback: (v) => won(v) } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? when.format(new Date(items[0].parsed.x)) : ""),
              label: (ctx) => {
                const raw = ctx.raw || {};
                if (raw.status) return `제안 #${raw.id} (${raw.label}): ${won(raw.y)}`;
                if (raw.kind) return `${raw.kind}: ${won(raw.old)} → ${won(raw.y)}`;
                return `${ctx.dataset.label}: ${won(ctx.parsed.y)}`;
              },
            },
          },
        },
      },
    });
  }

  if (typeof htmx !== "undefined") {
    htmx.onLoad(draw); // the first load and every swapped-in part
  } else {
    document.addEventListener("DOMContentLoaded", () => draw(document));
  }
})();
