// One-shot, idempotent replica-set bootstrap for Branchline.
// Run by the `mongo-init` service in compose.yaml:
//   mongosh --host mongo1 --quiet /scripts/mongo-init.js
// Safe to run any number of times: an initiated set is left untouched.

const RS_NAME = "rs0";
const MEMBERS = [
  { _id: 0, host: "mongo1:27017", priority: 2 },
  { _id: 1, host: "mongo2:27017", priority: 1 },
  { _id: 2, host: "mongo3:27017", priority: 1 },
];
const PRIMARY_TIMEOUT_MS = 120 * 1000;
const NOT_YET_INITIALIZED = 94;
const ALREADY_INITIALIZED = 23;

function isInitiated() {
  try {
    const status = rs.status();
    return status.ok === 1;
  } catch (e) {
    if (e.code === NOT_YET_INITIALIZED || e.codeName === "NotYetInitialized") {
      return false;
    }
    throw e;
  }
}

function primaryName() {
  try {
    const primary = rs.status().members.find((m) => m.stateStr === "PRIMARY");
    return primary ? primary.name : null;
  } catch (e) {
    return null; // status can be briefly unavailable right after initiate
  }
}

if (isInitiated()) {
  print(`replica set ${RS_NAME} already initiated`);
} else {
  print(`initiating replica set ${RS_NAME} with ${MEMBERS.map((m) => m.host).join(", ")}`);
  try {
    rs.initiate({ _id: RS_NAME, members: MEMBERS });
  } catch (e) {
    if (e.code !== ALREADY_INITIALIZED && e.codeName !== "AlreadyInitialized") {
      throw e;
    }
    print("replica set was initiated concurrently; continuing");
  }
}

const deadline = Date.now() + PRIMARY_TIMEOUT_MS;
let primary = primaryName();
while (!primary && Date.now() < deadline) {
  sleep(1000);
  primary = primaryName();
}
if (!primary) {
  print(`no PRIMARY elected in ${PRIMARY_TIMEOUT_MS / 1000}s`);
  printjson(rs.status());
  quit(1);
}
print(`replica set ${RS_NAME} ready; primary is ${primary}`);
