/** One probe target: an endpoint address, the TCP ports to try, and the ServiceImports ("namespace/name") it belongs to. */
export interface Target {
  address: string;
  ports: number[];
  owners: string[];
}
