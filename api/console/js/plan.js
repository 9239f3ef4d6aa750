// The camera plan: an SVG of camera positions (metres east/north from GET /cameras), north up.
// Used to pick the last-seen camera and to draw a case's route of confirmed sightings.

import { h } from "./dom.js";
import { formatTime, t } from "./i18n.js";

const SIZE = { w: 480, h: 320, padX: 70, padY: 36 };

function projector(cameras) {
  const xs = cameras.map((c) => c.x);
  const ys = cameras.map((c) => c.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = Math.max(maxX - minX, 1);
  const spanY = Math.max(maxY - minY, 1);
  const scale = Math.min((SIZE.w - 2 * SIZE.padX) / spanX, (SIZE.h - 2 * SIZE.padY) / spanY);
  const offX = (SIZE.w - scale * spanX) / 2;
  const offY = (SIZE.h - scale * spanY) / 2;
  return (x, y) => [offX + (x - minX) * scale, SIZE.h - (offY + (y - minY) * scale)];
}

/**
 * cameras: [{id, name, x, y}]; opts.selected: camera id; opts.onPick(camera) makes cameras
 * buttons; opts.route: confirmed sightings [{camera_id, start_time}] oldest first.
 */
export function cameraPlan(cameras, opts = {}) {
  const svg = h("svg:svg", {
    viewBox: `0 0 ${SIZE.w} ${SIZE.h}`,
    class: "plan",
    role: opts.onPick ? "group" : "img",
    "aria-label": opts.label || t("plan.label"),
  });
  if (!cameras.length) {
    svg.append(h("svg:text", { x: 20, y: 40, class: "plan-empty" }, t("plan.none")));
    return svg;
  }
  const at = projector(cameras);
  const byId = new Map(cameras.map((c) => [c.id, c]));
  svg.append(
    h("svg:defs", {},
      h("svg:marker", {
        id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
        orient: "auto-start-reverse",
      }, h("svg:path", { d: "M0,0 L10,5 L0,10 z", class: "route-arrow" }))),
    h("svg:text", { x: SIZE.w - 24, y: 22, class: "plan-north" }, "N ↑"),
  );
  const route = (opts.route || []).filter((s) => byId.has(s.camera_id));
  if (route.length) {
    const points = route.map((s) => at(byId.get(s.camera_id).x, byId.get(s.camera_id).y));
    if (points.length > 1) {
      svg.append(h("svg:polyline", {
        class: "route", points: points.map((p) => p.join(",")).join(" "), "marker-end": "url(#arrow)",
      }));
    }
    points.forEach(([x, y], i) => {
      const s = route[i];
      svg.append(h("svg:g", { class: i === points.length - 1 ? "route-stop newest" : "route-stop" },
        h("svg:title", {}, `${i + 1}. ${byId.get(s.camera_id).name} ${formatTime(s.start_time)}`),
        h("svg:circle", { cx: x + 10, cy: y - 10, r: 9 }),
        h("svg:text", { x: x + 10, y: y - 6, "text-anchor": "middle" }, String(i + 1))));
    });
  }
  for (const camera of cameras) {
    const [x, y] = at(camera.x, camera.y);
    const picked = camera.id === opts.selected;
    const node = h("svg:g", {
      class: `camera${picked ? " picked" : ""}`,
      dataset: { camera: camera.id },
      transform: `translate(${x},${y})`,
    },
    h("svg:title", {}, `${camera.name} (${camera.id})`),
    h("svg:circle", { r: picked ? 10 : 7 }),
    h("svg:text", { y: 22, "text-anchor": "middle" }, camera.name));
    if (opts.onPick) {
      node.setAttribute("role", "button");
      node.setAttribute("tabindex", "0");
      node.setAttribute("aria-pressed", picked ? "true" : "false");
      node.setAttribute("aria-label", t("plan.pick", { name: camera.name }));
      node.addEventListener("click", () => opts.onPick(camera));
      node.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          opts.onPick(camera);
        }
      });
    }
    svg.append(node);
  }
  return svg;
}
