// GET /docs: the OpenAPI document (/openapi.json, from the same server) rendered by Swagger UI, bundled
// with the console (no CDN) and run under the console's CSP. "Try it out" sends requests to this server;
// "Authorize" takes an access token (from POST /api/v1/auth/password).
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";
import "./docs.css";

SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#docs",
  deepLinking: true,
  docExpansion: "list", // every operation listed (the document has no tags: one group)
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  filter: true,
  persistAuthorization: false,
  tryItOutEnabled: false,
  validatorUrl: null, // the default validator is another host
});
