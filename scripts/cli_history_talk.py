"""The conversation scripts/cli_history.py holds with the Claude Code CLI: a system prompt,
twenty user turns of a few sentences each, and what the fake model answers to each (in
several deltas, so that the answer streams)."""

SYSTEM = ("You are a careful assistant helping a small team plan the move of their web "
          "service from one hosting provider to another. Answer briefly and concretely.")
USER_TURNS = [
    "We run a Django app with a Postgres database and a Redis cache on two rented servers. "
    "We want to move everything to a managed cloud within three months. Where do we start?",
    "The database is about 80 GB and grows by a gigabyte a week. Can we copy it while "
    "the site stays up, or do we need a maintenance window?",
    "Our users are mostly in Europe, some in North America. Which region would you pick, "
    "and does it matter much for a site like ours?",
    "We have about forty cron jobs on the old servers. Some send e-mails, some clean up "
    "files. How would you move them without running anything twice?",
    "Redis holds sessions and a job queue. If we lose the sessions, everyone is logged "
    "out. Is that acceptable for one night, or should we copy them too?",
    "Our static files are on the same disk as the app, about 200 GB of user uploads. "
    "Should they go to object storage, and how do we switch the URLs over?",
    "We use Let's Encrypt certificates renewed by certbot on the old machines. What "
    "changes when a load balancer sits in front of the app?",
    "How should we handle the DNS switch? Our TTL is one day at the moment.",
    "The team is three developers, none of us an operations specialist. Would you use "
    "containers for this move, or keep the app on plain virtual machines?",
    "If we do use containers, what is the least we need to learn to run them safely in "
    "production? We do not want a cluster we cannot debug.",
    "Our logs go to files that we read with grep over SSH. What would you replace that "
    "with, without paying for a big logging product?",
    "We never tested restoring our backups. How would you test that before the move, "
    "and how often afterwards?",
    "Money matters: the old servers cost 300 euros a month. What should we watch so the "
    "cloud bill does not surprise us?",
    "Some of our customers need their data to stay in the EU. Does that limit which "
    "managed services we can use for the database and the uploads?",
    "Can you sketch the order of the whole migration as a list of steps, with the "
    "riskiest ones marked?",
    "Step four worries me, the final database sync. How long would the site be "
    "read-only, roughly, for 80 GB with logical replication?",
    "What would make us roll back, and how would the rollback work once users have "
    "written new data to the new database?",
    "Should we freeze feature work during the move, or can the developers keep "
    "shipping small changes?",
    "After the move, what should we monitor in the first week, and what alerts would "
    "you set up on day one?",
    "Thanks. To close, summarise the three decisions we must take this week, one "
    "sentence each.",
]
ANSWERS = [  # what the fake model says, one a turn; several deltas each
    ["Start with an inventory: ", "every service, cron job, ", "secret and DNS record."],
    ["You can copy it live ", "with logical replication; ", "keep a short window for the switch."],
    ["Pick a central European region; ", "the latency to North America ", "is fine for a web app."],
    ["Move them to one scheduler ", "and disable each old job ", "the day its copy starts."],
    ["Copy the sessions if it is cheap; ", "otherwise announce the logout ", "and do it at night."],
    ["Yes, object storage, ", "with a redirect from the old paths ", "while the copy finishes."],
    ["The balancer terminates TLS; ", "the managed certificate ", "replaces certbot there."],
    ["Lower the TTL to five minutes ", "two days before, ", "switch, then raise it again."],
    ["Plain virtual machines ", "are fine for three people; ", "containers can come later."],
    ["One container per service, ", "a managed runtime, ", "and logs you can read."],
    ["A hosted log search ", "on the free tier, or Loki ", "on one small machine."],
    ["Restore last night's backup ", "into a scratch database ", "monthly, and time it."],
    ["Set a budget alert, ", "tag every resource, ", "and review the bill weekly."],
    ["Yes: choose EU regions ", "for the database and the bucket, ", "and check the replicas."],
    ["Inventory, copies, sync, ", "switch (risky), verify, ", "then retire the old servers."],
    ["With replication running, ", "minutes: only the last catch-up ", "and the DNS switch."],
    ["Roll back on data errors; ", "replicate new writes back ", "until you are sure."],
    ["Keep shipping small changes, ", "but freeze schema migrations ", "during the move."],
    ["Errors, latency, disk, ", "replication lag and costs; ", "alert on errors and lag."],
    ["Pick the region, ", "decide on containers, ", "and schedule the switch night."],
]
