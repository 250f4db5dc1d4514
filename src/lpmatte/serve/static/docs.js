// The OpenAPI document as plain HTML: endpoints, parameters, bodies and answers.
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function parameterRow(parameter) {
  const schema = parameter.schema || {};
  const type = schema.type || (schema.anyOf || []).map((s) => s.type).filter((t) => t !== "null").join("|");
  const fallback = schema.default === undefined ? "" : ` (default ${schema.default})`;
  return element("li", `${parameter.name} — ${parameter.in}, ${type || "any"}${fallback}: ${parameter.description || ""}`);
}

function endpoint(path, method, operation) {
  const section = element("section", undefined, "endpoint");
  section.append(element("h2", `${method.toUpperCase()} ${path}`), element("p", operation.summary || ""));
  if (operation.parameters && operation.parameters.length) {
    const list = element("ul");
    operation.parameters.forEach((parameter) => list.append(parameterRow(parameter)));
    section.append(element("h3", "Parameters"), list);
  }
  if (operation.requestBody) {
    section.append(element("h3", "Body"), element("p", Object.keys(operation.requestBody.content).join(" or ")));
  }
  const answers = element("ul");
  for (const [status, response] of Object.entries(operation.responses || {})) {
    const types = Object.keys(response.content || {}).join(", ");
    answers.append(element("li", `${status}: ${response.description || ""}${types ? ` [${types}]` : ""}`));
  }
  section.append(element("h3", "Answers"), answers);
  return section;
}

async function render() {
  const main = document.getElementById("endpoints");
  const spec = await (await fetch("openapi.json")).json();
  main.replaceChildren(element("p", `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`));
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) main.append(endpoint(path, method, operation));
  }
}

render().catch((error) => { document.getElementById("endpoints").textContent = `Could not read openapi.json: ${error}`; });
