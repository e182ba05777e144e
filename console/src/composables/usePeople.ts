// Names of the people a record names by id (a warning's history, an audit entry's actor), looked up once
// per viewer. Someone outside the viewer's scope (an administrator of a higher org) answers 404 and is
// shown as such; an anonymised member answers the name the server replaced theirs with.
import { api } from "@/api/client";
import { ApiProblem } from "@/api/errors";

const people = new Map<string, Promise<string | null>>();

export function personName(viewerId: string, memberId: string): Promise<string | null> {
  const key = `${viewerId}:${memberId}`;
  let known = people.get(key);
  if (!known) {
    known = api.get("/api/v1/members/{member_id}", { path: { member_id: memberId } })
      .then((m) => m.name)
      .catch((e) => (e instanceof ApiProblem && (e.status === 404 || e.status === 403) ? null : Promise.reject(e)));
    people.set(key, known);
  }
  return known;
}
