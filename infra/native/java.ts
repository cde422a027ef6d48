/**
 * Finding a Java runtime for the JVM servers. Kafka 3.9 runs on Java 17; Apicurio Registry 3.3
 * is compiled for Java 21, so the registry looks for the newest JDK it can find.
 */
import fs from "node:fs";
import path from "node:path";

export interface JavaRuntime {
  bin: string;
  major: number;
}

function majorOf(home: string): number | null {
  try {
    const release = fs.readFileSync(path.join(home, "release"), "utf8");
    const m = /^JAVA_VERSION="(\d+)/m.exec(release);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** POLITY_JAVA_HOME alone when set; else JAVA_HOME and the JDKs in /usr/lib/jvm, newest first. */
export function javaRuntimes(env: NodeJS.ProcessEnv = process.env): JavaRuntime[] {
  const homes = new Set<string>();
  if (env.POLITY_JAVA_HOME) homes.add(env.POLITY_JAVA_HOME);
  else if (env.JAVA_HOME) homes.add(env.JAVA_HOME);
  if (!env.POLITY_JAVA_HOME && fs.existsSync("/usr/lib/jvm")) {
    for (const d of fs.readdirSync("/usr/lib/jvm")) homes.add(path.join("/usr/lib/jvm", d));
  }
  const found: JavaRuntime[] = [];
  for (const home of homes) {
    const major = majorOf(home);
    const bin = path.join(home, "bin", "java");
    if (major !== null && fs.existsSync(bin) && !found.some((j) => fs.realpathSync(j.bin) === fs.realpathSync(bin))) {
      found.push({ bin, major });
    }
  }
  return found.sort((a, b) => b.major - a.major);
}

/** The newest runtime of at least `min`, or null. `java` on PATH stands in when nothing is found. */
export function newestJava(min: number): JavaRuntime | null {
  const runtimes = javaRuntimes();
  if (runtimes.length === 0) return min <= 17 ? { bin: "java", major: 17 } : null;
  const best = runtimes[0]!;
  return best.major >= min ? best : null;
}
