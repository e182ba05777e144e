// Short names for the API's schemas: `Schemas["OrgOut"]`.
import type { components } from "./schema";

export type Schemas = components["schemas"];
