// Seeds the `documents` collection in the docker-compose MongoDB on its first start (mongosh runs
// files of /docker-entrypoint-initdb.d). Outside docker, scripts/load-sample-data writes the same
// shape of documents through the engine.
const rows = 10000;
const statuses = ["active", "inactive", "draft"];
const ages = [22, 31, 45, 19, 27, 60];
const docs = [];
for (let n = 0; n < rows; n++) {
  docs.push({
    age: ages[n % 6],
    email: `doc${n}@example.com`,
    name: `Document Author ${n}`,
    status: statuses[n % 3],
    user_id: n + 1,
  });
}
db.getSiblingDB("sample").documents.insertMany(docs);
