// Shared helpers of the llm-scheduler pages, as window.llmWeb. No dependencies, no build step.
// Data from the server is only ever put into the page as text (textContent, setAttribute):
// never innerHTML.
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const FIT_WIDTH = 1600; // as in _graph.html

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) {
        append(node, child);
      } else if (child instanceof Node) {
        node.appendChild(child);
      } else {
        node.appendChild(document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function setAttributes(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on") && typeof value === "function") {
        node.addEventListener(name.slice(2).toLowerCase(), value);
      } else if (name === "dataset") {
        for (const [key, item] of Object.entries(value)) node.dataset[key] = String(item);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    return node;
  }

  // el("a", {href: "/runs/x", class: "mono"}, "text", otherNode): an HTML element; strings
  // become text nodes, attributes are set with setAttribute, on* functions become listeners.
  function el(tag, attrs, ...children) {
    return append(setAttributes(document.createElement(tag), attrs), children);
  }

  // svg("rect", {x: 1, y: 2}): an SVG element, as el.
  function svg(tag, attrs, ...children) {
    return append(setAttributes(document.createElementNS(SVG_NS, tag), attrs), children);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // The JSON of a <script type="application/json" id="..."> block (written with |tojson).
  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  // fetchJson(url) or fetchJson(url, {method: "POST", body: {...}}) -> {ok, status, data}.
  // A body is sent as JSON (the server refuses state-changing requests that are not JSON).
  async function fetchJson(url, options) {
    const opts = options || {};
    const init = {
      method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    };
    if (opts.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (opts.signal) init.signal = opts.signal;
    const response = await fetch(url, init);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      // Aborted while the body was read (a newer request replaced this one): as if aborted
      // before the answer came. Otherwise a body that is not JSON is a failure, whatever the
      // status said.
      if (error.name === "AbortError") throw error;
      return { ok: false, status: response.status, data: { error: response.statusText || String(error) } };
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms);
    };
  }

  // "RUN_STATUS_SUCCEEDED" or "succeeded" -> "status-succeeded" (as status_class in app.py).
  function statusClass(status) {
    let name = String(status || "").trim().toUpperCase().replace(/^RUN_STATUS_/, "");
    if (name === "" || name === "UNSPECIFIED") name = "PENDING";
    return "status-" + name.toLowerCase();
  }

  const STATUS_CLASSES = ["status-pending", "status-running", "status-succeeded",
                          "status-failed", "status-skipped", "status-cancelled", "status-waiting"];

  // Sets the status class of a node (a badge or a graph node group), removing the old one.
  function setStatus(node, status) {
    node.classList.remove(...STATUS_CLASSES);
    node.classList.add(statusClass(status));
  }

  // Draws a graph_layout graph into container as SVG, the same markup as _graph.html.
  // options.onSelect(taskId) is called when a node is clicked or activated with Enter/Space;
  // options.id names the graph (unique per page; default "graph", as graph_id in _graph.html);
  // options.fit shrinks a graph up to FIT_WIDTH wide to its box's width (as graph_fit).
  function drawGraph(container, graph, options) {
    const opts = options || {};
    const gid = opts.id || "graph";
    clear(container);
    if (!graph) return null;
    const root = svg("svg", {
      id: gid, class: opts.fit && graph.width <= FIT_WIDTH ? "graph graph-fit" : "graph",
      width: graph.width, height: graph.height,
      viewBox: "0 0 " + graph.width + " " + graph.height,
      role: "group", "aria-label": "Task graph",
    });
    root.appendChild(svg("defs", {}, svg("marker", {
      id: gid + "-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "graph-arrow" }))));
    const edges = svg("g", { class: "graph-edges" });
    for (const edge of graph.edges) {
      edges.appendChild(svg("path", {
        class: "graph-edge", d: edge.path, "marker-end": "url(#" + gid + "-arrow)",
        "data-source": edge.source, "data-target": edge.target,
      }));
    }
    root.appendChild(edges);
    const nodes = svg("g", { class: "graph-nodes" });
    for (const node of graph.nodes) nodes.appendChild(graphNodeElement(node, opts));
    root.appendChild(nodes);
    container.appendChild(root);
    return root;
  }

  // One node of a graph_layout graph as an SVG group (as in _graph.html); options as drawGraph's.
  function graphNodeElement(node, options) {
    const opts = options || {};
    const classes = ["graph-node", statusClass(node.status)];
    if (node.is_join) classes.push("is-join");
    if (node.is_start) classes.push("is-start");
    if (node.is_map) classes.push("is-map");
    const group = svg("g", {
      class: classes.join(" "), "data-task-id": node.task_id,
      transform: "translate(" + node.x + "," + node.y + ")",
      tabindex: opts.onSelect ? 0 : null, role: opts.onSelect ? "button" : null,
      "aria-label": "Task " + node.task_id,
    });
    group.appendChild(svg("title", {}, node.tooltip));
    if (node.is_map) {
      group.appendChild(svg("rect", { class: "graph-stack", x: 5, y: 5, width: node.width, height: node.height, rx: 6 }));
    }
    group.appendChild(svg("rect", { class: "graph-box", width: node.width, height: node.height, rx: 6 }));
    for (const line of node.lines) {
      group.appendChild(svg("text", { class: line.class, x: line.x, y: line.y }, line.text));
    }
    for (const bar of node.bars || []) {
      group.appendChild(svg("rect", {
        class: "graph-bar " + statusClass(bar.status), x: bar.x, y: bar.y, width: bar.width, height: bar.height,
      }));
    }
    if (opts.onSelect) {
      group.addEventListener("click", () => opts.onSelect(node.task_id));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          opts.onSelect(node.task_id);
        }
      });
    }
    return group;
  }

  // The node group of a task in a drawn graph (data-task-id), or null.
  function graphNode(container, taskId) {
    for (const node of container.querySelectorAll("g.graph-node")) {
      if (node.getAttribute("data-task-id") === taskId) return node;
    }
    return null;
  }

  // Fills a list with config problems ({path, message, hint}), one item each, as text:
  // "path — message — hint". `where` names a problem without a path ("<config>").
  function renderProblems(list, problems, where) {
    clear(list);
    for (const problem of problems || []) {
      list.appendChild(el("li", {},
        el("span", { class: "problem-path" }, problem.path || where || "<config>"),
        " — ",
        el("span", { class: "problem-message" }, problem.message),
        problem.hint ? [" — ", el("span", { class: "problem-hint" }, problem.hint)] : null,
      ));
    }
    return list;
  }

  window.llmWeb = {
    el, svg, clear, readJson, fetchJson, debounce, statusClass, setStatus, drawGraph, graphNodeElement, graphNode,
    renderProblems,
  };
})();
